"""`HypergolixLink`: an app's connection to the local Hypergolix service
(`hypergolix start`), with the API of the seed README.

Every operation comes twice: `name_threadsafe(...)` blocks and may be
called from any thread (the app's main thread, a threadsafe callback) but
not from the link's own loop; `await name_async(...)` may be awaited from
any event loop: the app's own (it is carried to the link's loop and back)
or the link's (inside an async callback or handler).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable, Coroutine, Optional, Union

from . import _wire
from ._link import DEFAULT_TIMEOUT, LinkCore
from .exceptions import HGXLinkError
from .ids import ApiID, AppToken, Ghid
from .utils import AppObj

__all__ = ["HypergolixLink", "DEFAULT_PORT"]

#: Where the local service listens by default.
DEFAULT_PORT = 7772

ObjectHandler = Callable[[AppObj], Union[None, Awaitable[None]]]


class HypergolixLink:
    """Connects to the Hypergolix service and keeps the connection: on a
    drop it reconnects with backoff and re-sends its token, its api_ids and
    fetches every object it handed out.

    `ipc_port`: the service's port on 127.0.0.1. Our additions, by keyword:
    `host`; `unix` (a socket path: `hypergolix start --ipc unix:PATH`);
    `native_ghids` (default True: GHIDs as `hypergolix whoami` prints
    them; False gives 0.1.0's form); `timeout` per request and
    `connect_timeout` for the first connection (seconds).
    """

    def __init__(
        self,
        ipc_port: int = DEFAULT_PORT,
        debug: bool = False,
        *,
        host: str = "127.0.0.1",
        unix: Optional[str] = None,
        native_ghids: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = 10.0,
        autostart: bool = True,
    ) -> None:
        self._core = LinkCore(
            host=host,
            port=int(ipc_port),
            unix=unix,
            native_ghids=native_ghids,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
        self._debug = debug
        self._started = False
        if debug:
            self._core.loop.set_debug(True)
        if autostart:
            self.start()

    def start(self) -> None:
        """Connects (done by the constructor unless `autostart=False`)."""
        if not self._started:
            self._started = True
            self._core.start()

    def stop(self) -> None:
        """Closes the connection and the link's thread."""
        self._core.stop()

    def stop_threadsafe(self) -> None:
        """`stop` (0.1.0's name)."""
        self._core.stop()

    async def stop_async(self) -> None:
        """`stop`, awaitable: from the app's own loop, the wait for the
        connection to close runs off that loop, so it never stalls."""
        if self._core.in_loop():
            self._core.stop()
        else:
            await asyncio.get_running_loop().run_in_executor(None, self._core.stop)

    def __enter__(self) -> HypergolixLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- who, and which app -----------------------------------------

    @property
    def app_token(self) -> Optional[AppToken]:
        """This app's token, once `new_token_*` or `set_token_*` ran."""
        return self._core.token

    def whoami_threadsafe(self) -> Ghid:
        """The agent's identity: what others share with."""
        return self._core.call(self._whoami())

    async def whoami_async(self) -> Ghid:
        """`whoami_threadsafe`, awaitable."""
        return await self._core.acall(self._whoami())

    async def _whoami(self) -> Ghid:
        if self._core.whoami is None:
            body = await self._core.request("?I", b"")
            self._core.whoami = _wire.ghids(body, 1)[0]
        return self._core.whoami

    def new_token_threadsafe(self) -> AppToken:
        """A new app token (keep it: with it the app finds its private
        objects and startup object again)."""
        return self._core.call(self._new_token())

    async def new_token_async(self) -> AppToken:
        """`new_token_threadsafe`, awaitable."""
        return await self._core.acall(self._new_token())

    async def _new_token(self) -> AppToken:
        body = await self._core.request("+T", bytes(16))
        token = AppToken(body)
        self._core.token = token
        return token

    def set_token_threadsafe(self, token: bytes) -> Optional[Ghid]:
        """Uses an existing app token; returns the startup object's address
        (or None)."""
        return self._core.call(self._set_token(token))

    async def set_token_async(self, token: bytes) -> Optional[Ghid]:
        """`set_token_threadsafe`, awaitable."""
        return await self._core.acall(self._set_token(token))

    async def _set_token(self, token: bytes) -> Optional[Ghid]:
        tok = AppToken(bytes(token))
        if tok == AppToken.null():
            raise ValueError("the null token asks for a new one: use new_token")
        await self._core.request("+T", bytes(tok))
        self._core.token = tok
        return await self._startup()

    async def _startup(self) -> Optional[Ghid]:
        body = await self._core.request(">$", b"")
        return None if not body else _wire.ghids(body, 1)[0]

    def get_startup_threadsafe(self) -> Optional[Ghid]:
        """The address of this token's startup object, or None."""
        return self._core.call(self._startup())

    async def get_startup_async(self) -> Optional[Ghid]:
        """`get_startup_threadsafe`, awaitable."""
        return await self._core.acall(self._startup())

    def register_startup_threadsafe(self, obj: Any) -> None:
        """Makes `obj` this token's startup object."""
        self._core.call(self._core_request("+$", bytes(_address_of(obj))))

    async def register_startup_async(self, obj: Any) -> None:
        """`register_startup_threadsafe`, awaitable."""
        await self._core.acall(self._core_request("+$", bytes(_address_of(obj))))

    def deregister_startup_threadsafe(self) -> None:
        """Forgets this token's startup object."""
        self._core.call(self._core_request("-$", b""))

    async def deregister_startup_async(self) -> None:
        """`deregister_startup_threadsafe`, awaitable."""
        await self._core.acall(self._core_request("-$", b""))

    async def _core_request(self, code: str, body: bytes) -> None:
        await self._core.request(code, body)

    # ---- the account (the local service of this project only) -------

    def change_password_threadsafe(self, current: Union[str, bytes], new: Union[str, bytes]) -> None:
        """Changes the account password (`!P`). The service checks `current`
        against the account as the persistence server holds it; a wrong one
        raises `IPCError` and changes nothing. Returns once the new password
        opens the account on a new device; devices already set up keep
        working."""
        self._core.call(self._change_password(current, new))

    async def change_password_async(self, current: Union[str, bytes], new: Union[str, bytes]) -> None:
        """`change_password_threadsafe` from the app's event loop."""
        await self._core.acall(self._change_password(current, new))

    async def _change_password(self, current: Union[str, bytes], new: Union[str, bytes]) -> None:
        cur, nxt = _secret(current), _secret(new)
        if not nxt:
            raise ValueError("the new password is empty")
        if len(cur) > 0xFFFF:
            raise ValueError("the current password is too long")
        await self._core.request("!P", len(cur).to_bytes(2, "big") + cur + nxt)

    def recovery_words_threadsafe(self, password: Union[str, bytes]) -> str:
        """New recovery words for the account (`?W`): twelve words that, with
        the user id, restore it when the password is lost. Show them to the
        user once and keep them nowhere; words made before stop working.
        Needs the current password."""
        return self._core.call(self._recovery_words(password))

    async def recovery_words_async(self, password: Union[str, bytes]) -> str:
        """`recovery_words_threadsafe` from the app's event loop."""
        return await self._core.acall(self._recovery_words(password))

    async def _recovery_words(self, password: Union[str, bytes]) -> str:
        body = await self._core.request("?W", _secret(password))
        return bytes(body).decode("utf-8")

    # ---- shares -----------------------------------------------------

    def register_api_threadsafe(self, api_id: object, object_handler: ObjectHandler) -> bool:
        """Calls `object_handler(obj)` for each new object shared with the
        agent under `api_id` (a plain function on the callback thread, an
        `async def` on the link's loop). Returns True."""
        return self._core.call(self._register_api(api_id, object_handler))

    async def register_api_async(self, api_id: object, object_handler: ObjectHandler) -> bool:
        """`register_api_threadsafe`, awaitable."""
        return await self._core.acall(self._register_api(api_id, object_handler))

    async def _register_api(self, api_id: object, handler: ObjectHandler) -> bool:
        api = ApiID.coerce(api_id)
        if not callable(handler):
            raise TypeError("an object handler must be callable")
        is_async = inspect.iscoroutinefunction(handler)
        core = self._core

        async def on_share(address: Ghid, origin: Ghid, api: ApiID) -> None:
            obj = await self._get(address)
            if is_async:
                await handler(obj)  # type: ignore[misc]
            else:
                await asyncio.wrap_future(core.callback_thread.submit(handler, obj))

        await self._register_share(api, on_share)
        return True

    async def _register_share(
        self, api: ApiID, handler: Callable[[Ghid, Ghid, ApiID], Coroutine[Any, Any, None]]
    ) -> None:
        previous = self._core.share_handlers.get(api)
        self._core.share_handlers[api] = handler
        try:
            await self._core.request("+A", bytes(api))
        except BaseException:
            if previous is None:
                self._core.share_handlers.pop(api, None)
            else:
                self._core.share_handlers[api] = previous
            raise

    def deregister_api_threadsafe(self, api_id: object) -> None:
        """Stops receiving shares for `api_id`."""
        self._core.call(self._deregister_api(api_id))

    async def deregister_api_async(self, api_id: object) -> None:
        """`deregister_api_threadsafe`, awaitable."""
        await self._core.acall(self._deregister_api(api_id))

    async def _deregister_api(self, api_id: object) -> None:
        api = ApiID.coerce(api_id)
        await self._core.request("-A", bytes(api))
        self._core.share_handlers.pop(api, None)

    def on_share_result(self, callback: Optional[Callable[[Ghid, Ghid, bool], None]]) -> None:
        """Calls `callback(address, recipient, delivered)` on the callback
        thread after each share this app token made was accepted or refused."""
        self._core.on_share_result = callback

    # ---- objects ----------------------------------------------------

    def get_obj_threadsafe(self, ghid: Ghid) -> AppObj:
        """The object at `ghid` (kept up to date from then on)."""
        return self._core.call(self._get(ghid))

    async def get_obj_async(self, ghid: Ghid) -> AppObj:
        """`get_obj_threadsafe`, awaitable."""
        return await self._core.acall(self._get(ghid))

    async def _get(self, ghid: Ghid) -> AppObj:
        if not isinstance(ghid, Ghid):
            raise TypeError("an address is a Ghid")
        for o in self._core.live(ghid):
            if isinstance(o, AppObj) and not o._inoperable:
                return o
        obj = AppObj(self, await self._core.fetch(ghid))
        self._core.track(obj)
        return obj

    def new_obj_threadsafe(self, *args: Any, **kwargs: Any) -> AppObj:
        """`AppObj.from_threadsafe(self, *args, **kwargs)`."""
        return AppObj.from_threadsafe(self, *args, **kwargs)

    async def new_obj_async(self, *args: Any, **kwargs: Any) -> AppObj:
        """`AppObj.from_async(self, *args, **kwargs)`."""
        return await AppObj.from_async(self, *args, **kwargs)

    def update_obj_threadsafe(self, obj: AppObj, *args: Any, **kwargs: Any) -> None:
        """`obj.update_threadsafe(...)`."""
        obj.update_threadsafe(*args, **kwargs)

    async def update_obj_async(self, obj: AppObj, *args: Any, **kwargs: Any) -> None:
        """`obj.update_async(...)`."""
        await obj.update_async(*args, **kwargs)

    def share_obj_threadsafe(self, obj: AppObj, *args: Any, **kwargs: Any) -> None:
        """`obj.share_threadsafe(...)`."""
        obj.share_threadsafe(*args, **kwargs)

    async def share_obj_async(self, obj: AppObj, *args: Any, **kwargs: Any) -> None:
        """`obj.share_async(...)`."""
        await obj.share_async(*args, **kwargs)

    def freeze_obj_threadsafe(self, obj: AppObj) -> AppObj:
        """`obj.freeze_threadsafe()`."""
        return obj.freeze_threadsafe()

    async def freeze_obj_async(self, obj: AppObj) -> AppObj:
        """`obj.freeze_async()`."""
        return await obj.freeze_async()

    def hold_obj_threadsafe(self, obj: AppObj) -> None:
        """`obj.hold_threadsafe()`."""
        obj.hold_threadsafe()

    async def hold_obj_async(self, obj: AppObj) -> None:
        """`obj.hold_async()`."""
        await obj.hold_async()

    def discard_obj_threadsafe(self, obj: AppObj) -> None:
        """`obj.discard_threadsafe()`."""
        obj.discard_threadsafe()

    async def discard_obj_async(self, obj: AppObj) -> None:
        """`obj.discard_async()`."""
        await obj.discard_async()

    def delete_obj_threadsafe(self, obj: AppObj) -> None:
        """`obj.delete_threadsafe()`."""
        obj.delete_threadsafe()

    async def delete_obj_async(self, obj: AppObj) -> None:
        """`obj.delete_async()`."""
        await obj.delete_async()


def _address_of(obj: Any) -> Ghid:
    if isinstance(obj, Ghid):
        return obj
    for name in ("address", "ghid"):
        g = getattr(obj, name, None)
        if isinstance(g, Ghid):
            return g
    raise HGXLinkError("expected an object or its Ghid")


def _secret(value: Union[str, bytes]) -> bytes:
    """A password as the service takes it: UTF-8 for text."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"a password is str or bytes, not {type(value).__name__}")
