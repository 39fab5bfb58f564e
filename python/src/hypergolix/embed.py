"""`HGXLink`: the link under its 0.1.0 name and signature, with 0.1.0's
methods (`register_token`, `new(cls, ...)`, `get(cls, ghid)`,
`register_share_handler`, `wrap_threadsafe`, `wrap_loopsafe`, each as a
coroutine, `_threadsafe` and `_loopsafe`) beside the seed API it inherits
from `HypergolixLink`."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any, Awaitable, Callable, Coroutine, Optional, Type, TypeVar

from . import _wire
from ._link import DEFAULT_TIMEOUT
from .exceptions import HGXLinkError
from .ids import ApiID, AppToken, Ghid
from .objproxy import Obj
from .service import DEFAULT_PORT, HypergolixLink

__all__ = ["HGXLink"]

O = TypeVar("O", bound=Obj)
ShareHandler = Callable[[Ghid, Ghid, ApiID], Awaitable[Any]]


class HGXLink(HypergolixLink):
    """`HGXLink(ipc_port=7772, autostart=True, *, threaded=True)`: 0.1.0's
    link. Connects at once unless `autostart=False` (then call `start()`)."""

    def __init__(
        self,
        ipc_port: int = DEFAULT_PORT,
        autostart: bool = True,
        *args: Any,
        aengel: Any = None,
        threaded: bool = True,
        debug: bool = False,
        host: str = "127.0.0.1",
        unix: Optional[str] = None,
        native_ghids: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        if not threaded:
            raise HGXLinkError("this link always runs its own thread (threaded=True)")
        self._legroom = 7
        super().__init__(
            ipc_port, debug, host=host, unix=unix, native_ghids=native_ghids,
            timeout=timeout, connect_timeout=connect_timeout, autostart=autostart,
        )

    @property
    def whoami(self) -> Ghid:
        """The agent's identity; HGXLinkError while not connected."""
        if self._core.whoami is None:
            raise HGXLinkError("Whoami has not been defined: no connection to the service.")
        return self._core.whoami

    @property
    def token(self) -> AppToken:
        """This app's token; HGXLinkError if none yet."""
        if self._core.token is None:
            raise HGXLinkError("No token available.")
        return self._core.token

    # ---- tokens and startup -----------------------------------------

    async def register_token(self, token: Optional[bytes] = None) -> Optional[Ghid]:
        """A new token (None), or an existing one: returns the startup
        object's address (or None)."""
        return await self._core.acall(self._register_token(token))

    def register_token_threadsafe(self, token: Optional[bytes] = None) -> Optional[Ghid]:
        """`register_token`, blocking."""
        return self._core.call(self._register_token(token))

    register_token_loopsafe = register_token

    async def _register_token(self, token: Optional[bytes]) -> Optional[Ghid]:
        if self._core.token is not None:
            raise HGXLinkError("Token already set. It must be cleared before being re-set.")
        if token is None:
            await self._new_token()
            return None
        if not isinstance(token, AppToken):
            raise TypeError("Tokens must be of type hypergolix.utils.AppToken")
        return await self._set_token(token)

    async def register_startup(self, obj: Any) -> None:
        """Makes `obj` this token's startup object."""
        await self.register_startup_async(obj)

    async def deregister_startup(self) -> None:
        """Forgets this token's startup object."""
        await self.deregister_startup_async()

    register_startup_loopsafe = register_startup
    deregister_startup_loopsafe = deregister_startup

    # ---- objects ----------------------------------------------------

    async def get(self, cls: Type[O], ghid: Ghid) -> O:
        """The object at `ghid` as an instance of `cls` (an Obj class)."""
        return await self._core.acall(self._get_as(cls, ghid))

    def get_threadsafe(self, cls: Type[O], ghid: Ghid) -> O:
        """`get`, blocking."""
        return self._core.call(self._get_as(cls, ghid))

    get_loopsafe = get

    async def _get_as(self, cls: Type[O], ghid: Ghid) -> O:
        for o in self._core.live(ghid):
            if isinstance(o, Obj) and o.isalive:
                if type(o) is not cls:
                    raise HGXLinkError(
                        "Cannot get a new copy of an object using a new class. Use obj.recast instead."
                    )
                return o
        objdef = await self._core.fetch(ghid)
        if objdef.is_link:
            await self._core.request("-O", bytes(ghid))
            raise NotImplementedError("links to other objects are not supported by Obj")
        state = await cls.hgx_unpack(objdef.state)
        obj = cls(
            state, objdef.api_id, objdef.dynamic, objdef.private,
            objdef.address, objdef.author,
            hgxlink=self, _legroom=objdef.legroom or self._legroom,
        )
        self._core.track(obj)
        return obj

    async def new(
        self,
        cls: Type[O],
        state: Any,
        api_id: Optional[object] = None,
        dynamic: bool = True,
        private: bool = False,
        _legroom: Optional[int] = None,
    ) -> O:
        """Creates an object of class `cls` at the service."""
        return await self._core.acall(self._new(cls, state, api_id, dynamic, private, _legroom))

    def new_threadsafe(
        self,
        cls: Type[O],
        state: Any,
        api_id: Optional[object] = None,
        dynamic: bool = True,
        private: bool = False,
        _legroom: Optional[int] = None,
    ) -> O:
        """`new`, blocking."""
        return self._core.call(self._new(cls, state, api_id, dynamic, private, _legroom))

    new_loopsafe = new

    async def _new(
        self,
        cls: Type[O],
        state: Any,
        api_id: Optional[object],
        dynamic: bool,
        private: bool,
        legroom: Optional[int],
    ) -> O:
        api = cls._hgx_DEFAULT_API if api_id is None else ApiID.coerce(api_id)
        room = self._legroom if legroom is None else int(legroom)
        packed = await cls.hgx_pack(state)
        objdef = _wire.ObjDef(None, None, bool(private), bool(dynamic), room, api, False, packed)
        body = await self._core.request("+O", objdef.pack())
        obj = cls(
            state, api, dynamic, private, _wire.ghids(body, 1)[0], self._core.whoami,
            hgxlink=self, _legroom=room,
        )
        self._core.track(obj)
        return obj

    # ---- shares -----------------------------------------------------

    async def register_share_handler(self, api_id: ApiID, handler: ShareHandler) -> None:
        """Runs `await handler(ghid, origin, api_id)` on the link's loop for
        each object shared under `api_id` (one handler per api_id)."""
        await self._core.acall(self._register_handler(api_id, handler))

    def register_share_handler_threadsafe(self, api_id: ApiID, handler: ShareHandler) -> None:
        """`register_share_handler`, blocking."""
        self._core.call(self._register_handler(api_id, handler))

    register_share_handler_loopsafe = register_share_handler

    async def _register_handler(self, api_id: ApiID, handler: ShareHandler) -> None:
        if not isinstance(api_id, ApiID):
            raise TypeError("api_id must be ApiID.")
        if not inspect.iscoroutinefunction(handler):
            raise TypeError('Handler must be defined with "async def".')

        async def guarded(ghid: Ghid, origin: Ghid, api: ApiID) -> None:
            await handler(ghid, origin, api)

        await self._register_share(api_id, guarded)

    async def deregister_share_handler(self, api_id: ApiID) -> None:
        """Stops receiving shares for `api_id`."""
        await self.deregister_api_async(api_id)

    def deregister_share_handler_threadsafe(self, api_id: ApiID) -> None:
        """`deregister_share_handler`, blocking."""
        self.deregister_api_threadsafe(api_id)

    deregister_share_handler_loopsafe = deregister_share_handler

    def wrap_threadsafe(self, callback: Callable[..., Any]) -> Callable[..., Awaitable[None]]:
        """A blocking function as an `async def` handler or callback: it
        runs on the link's callback thread."""
        core = self._core

        @functools.wraps(callback)
        async def wrapped(*args: Any) -> None:
            await asyncio.wrap_future(core.callback_thread.submit(callback, *args))

        return wrapped

    def wrap_loopsafe(
        self, callback: Optional[Callable[..., Coroutine[Any, Any, Any]]] = None, *,
        target_loop: asyncio.AbstractEventLoop,
    ) -> Any:
        """A coroutine function of the app's own loop as a handler or
        callback (also a decorator: `@link.wrap_loopsafe(target_loop=loop)`)."""
        if callback is None:
            return lambda fn: self.wrap_loopsafe(fn, target_loop=target_loop)
        coro_fn = callback

        @functools.wraps(coro_fn)
        async def wrapped(*args: Any) -> None:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(coro_fn(*args), target_loop)
            )

        return wrapped
