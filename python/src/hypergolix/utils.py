"""`AppObj`: one object as an app sees it (the seed README's API), and the
identifiers (`ApiID`, `AppToken`, `Ghid`) at their 0.1.0 import path."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, List, Optional

from . import _wire
from .exceptions import DeadObject, LocallyImmutable, Unsharable
from .ids import ApiID, AppToken, Ghid, api_id_default

if TYPE_CHECKING:
    from .service import HypergolixLink

__all__ = ["AppObj", "ApiID", "AppToken", "Ghid", "ReadOnlyState"]

#: The api_id of objects made without one (0.1.0's default for bytes).
DEFAULT_API_ID = api_id_default(1)

ThreadsafeCallback = Callable[["AppObj"], Any]
AsyncCallback = Callable[["AppObj"], Awaitable[Any]]


class ReadOnlyState(LocallyImmutable, AttributeError):
    """This object's state cannot be set: it is static, or another agent's."""


def as_state(state: object) -> bytes:
    """The state as bytes; `TypeError` for anything that is not bytes-like."""
    if isinstance(state, (bytes, bytearray, memoryview)):
        return bytes(state)
    raise TypeError(f"a state is bytes, not {type(state).__name__}")


class AppObj:
    """An object of the agent's, or shared with it, kept up to date by its
    link. Make one with `AppObj.from_threadsafe(link, state, ...)` (or
    `await AppObj.from_async(...)`, or `link.new_obj_*`); get one by address
    with `link.get_obj_*`.

    Callbacks get the object after every update pushed from elsewhere (and
    once when it is deleted): threadsafe ones (plain callables) on the
    link's callback thread, async ones (`async def`) on the link's loop,
    each kind in registration order.
    """

    def __init__(self, embed: HypergolixLink, objdef: _wire.ObjDef, *, legroom: int = 7) -> None:
        assert objdef.address is not None
        self._embed = embed
        self._address: Ghid = objdef.address
        self._author = objdef.author
        self._api_id = objdef.api_id or DEFAULT_API_ID
        self._private = objdef.private
        self._dynamic = objdef.dynamic
        self._is_link_flag = objdef.is_link
        self._state: Optional[bytes] = objdef.state
        self._legroom = legroom
        self._inoperable = False
        self._callbacks_threadsafe: List[ThreadsafeCallback] = []
        self._callbacks_async: List[AsyncCallback] = []
        self._version = 0

    # ---- constructors -----------------------------------------------

    @classmethod
    def from_threadsafe(
        cls,
        embed: HypergolixLink,
        state: bytes,
        api_id: Optional[object] = None,
        private: bool = False,
        dynamic: bool = True,
        threadsafe_callbacks: Optional[Iterable[ThreadsafeCallback]] = None,
        async_callbacks: Optional[Iterable[AsyncCallback]] = None,
        _legroom: Optional[int] = None,
    ) -> AppObj:
        """Creates a new object at the service (blocking; any thread but the
        link's loop)."""
        return embed._core.call(
            cls._create(embed, state, api_id, private, dynamic,
                        threadsafe_callbacks, async_callbacks, _legroom)
        )

    @classmethod
    async def from_async(
        cls,
        embed: HypergolixLink,
        state: bytes,
        api_id: Optional[object] = None,
        private: bool = False,
        dynamic: bool = True,
        threadsafe_callbacks: Optional[Iterable[ThreadsafeCallback]] = None,
        async_callbacks: Optional[Iterable[AsyncCallback]] = None,
        _legroom: Optional[int] = None,
    ) -> AppObj:
        """Creates a new object at the service (from any event loop)."""
        return await embed._core.acall(
            cls._create(embed, state, api_id, private, dynamic,
                        threadsafe_callbacks, async_callbacks, _legroom)
        )

    @classmethod
    async def _create(
        cls,
        embed: HypergolixLink,
        state: object,
        api_id: Optional[object],
        private: bool,
        dynamic: bool,
        threadsafe_callbacks: Optional[Iterable[ThreadsafeCallback]],
        async_callbacks: Optional[Iterable[AsyncCallback]],
        legroom: Optional[int],
    ) -> AppObj:
        data = as_state(state)
        api = DEFAULT_API_ID if api_id is None else ApiID.coerce(api_id)
        room = 7 if legroom is None else int(legroom)
        tcbs = list(threadsafe_callbacks or [])
        acbs = list(async_callbacks or [])
        for fn in tcbs:
            _check_threadsafe(fn)
        for afn in acbs:
            _check_async(afn)
        objdef = _wire.ObjDef(None, None, bool(private), bool(dynamic), room, api, False, data)
        body = await embed._core.request("+O", objdef.pack())
        objdef.address = _wire.ghids(body, 1)[0]
        objdef.author = embed._core.whoami
        obj = cls(embed, objdef, legroom=room)
        obj._callbacks_threadsafe = tcbs
        obj._callbacks_async = acbs
        embed._core.track(obj)
        obj._pin()
        return obj

    # ---- properties -------------------------------------------------

    def _live(self) -> Ghid:
        if self._inoperable:
            raise DeadObject()
        return self._address

    @property
    def author(self) -> Optional[Ghid]:
        """The identity (key fingerprint) of the agent that made it."""
        return self._author

    @property
    def address(self) -> Ghid:
        """Its GHID: the dynamic address of a dynamic object, the
        container's of a static one."""
        return self._address

    @property
    def private(self) -> bool:
        """Private to the app token that made it: never shared or shown to
        other apps."""
        return self._private

    @property
    def api_id(self) -> ApiID:
        """Its schema id (routes shares to the apps that registered it)."""
        return self._api_id

    @property
    def is_dynamic(self) -> bool:
        """Whether it can change."""
        return self._dynamic

    @property
    def is_owned(self) -> bool:
        """Whether the agent logged in at the service made it."""
        return self._author is not None and self._author == self._embed._core.whoami

    @property
    def mutable(self) -> bool:
        """Dynamic and owned: this app can update it."""
        return self._dynamic and self.is_owned

    @property
    def is_link(self) -> Optional[bool]:
        """True for a link (its state is another object's address); else
        False if dynamic and None if static."""
        if self._is_link_flag:
            return True
        return False if self._dynamic else None

    @property
    def link_address(self) -> Optional[Ghid]:
        """The address a link points to; None unless `is_link`."""
        if self._is_link_flag and self._state is not None and len(self._state) == 65:
            return Ghid.from_bytes(self._state)
        return None

    @property
    def state(self) -> bytes:
        """The current state (bytes). Setting it updates a mutable object
        (`update_threadsafe`); a static object's state is set once, so
        setting it raises `AttributeError`."""
        self._live()
        assert self._state is not None
        return self._state

    @state.setter
    def state(self, value: bytes) -> None:
        self._live()
        if self.mutable:
            self.update_threadsafe(value)
            return
        if not self._dynamic:
            if self._state is not None:
                raise ReadOnlyState("a static object's state is set once")
            self._state = as_state(value)
            return
        raise ReadOnlyState("only the agent that made a dynamic object can update it")

    @property
    def threadsafe_callbacks(self) -> List[ThreadsafeCallback]:
        """The threadsafe update callbacks, in order (a copy)."""
        return list(self._callbacks_threadsafe)

    @property
    def async_callbacks(self) -> List[AsyncCallback]:
        """The async update callbacks, in order (a copy)."""
        return list(self._callbacks_async)

    # ---- callbacks --------------------------------------------------

    def append_threadsafe_callback(self, callback: ThreadsafeCallback) -> None:
        """Adds a threadsafe callback after the others."""
        self._callbacks_threadsafe.append(_check_threadsafe(callback))
        self._pin()

    def prepend_threadsafe_callback(self, callback: ThreadsafeCallback) -> None:
        """Adds a threadsafe callback before the others."""
        self._callbacks_threadsafe.insert(0, _check_threadsafe(callback))
        self._pin()

    def remove_threadsafe_callback(self, callback: ThreadsafeCallback) -> None:
        """Removes its first registration; `ValueError` if not registered."""
        self._callbacks_threadsafe.remove(callback)
        self._pin()

    def clear_threadsafe_callbacks(self) -> None:
        """Removes every threadsafe callback."""
        self._callbacks_threadsafe.clear()
        self._pin()

    def append_async_callback(self, callback: AsyncCallback) -> None:
        """Adds an async callback after the others."""
        self._callbacks_async.append(_check_async(callback))
        self._pin()

    def prepend_async_callback(self, callback: AsyncCallback) -> None:
        """Adds an async callback before the others."""
        self._callbacks_async.insert(0, _check_async(callback))
        self._pin()

    def remove_async_callback(self, callback: AsyncCallback) -> None:
        """Removes its first registration; `ValueError` if not registered."""
        self._callbacks_async.remove(callback)
        self._pin()

    def clear_async_callbacks(self) -> None:
        """Removes every async callback."""
        self._callbacks_async.clear()
        self._pin()

    def _pin(self) -> None:
        keep = bool(self._callbacks_threadsafe or self._callbacks_async)
        self._embed._core.pin(self, keep and not self._inoperable)

    # ---- operations -------------------------------------------------

    def update_threadsafe(self, state: bytes) -> None:
        """Replaces the state: encrypted, signed, and delivered to everyone
        it is shared with and the agent's other devices."""
        self._embed._core.call(self._update(state))

    async def update_async(self, state: bytes) -> None:
        """`update_threadsafe`, awaitable from any event loop."""
        await self._embed._core.acall(self._update(state))

    async def _update(self, state: object) -> None:
        address = self._live()
        data = as_state(state)
        if not self._dynamic:
            raise LocallyImmutable("a static object cannot be updated")
        if not self.is_owned:
            raise LocallyImmutable("only the agent that made an object can update it")
        before = self._version
        objdef = _wire.ObjDef(address, None, self._private, False, 0, None, False, data)
        await self._embed._core.request("!O", objdef.pack())
        # A push that arrived meanwhile is newer than this answer: keep it.
        if self._version == before:
            self._state = data

    def share_threadsafe(self, recipient: Ghid) -> None:
        """Shares it with another identity (read-only for them)."""
        self._embed._core.call(self._share(recipient))

    async def share_async(self, recipient: Ghid) -> None:
        """`share_threadsafe`, awaitable from any event loop."""
        await self._embed._core.acall(self._share(recipient))

    async def _share(self, recipient: Ghid) -> None:
        address = self._live()
        if not isinstance(recipient, Ghid):
            raise TypeError("a recipient is a Ghid")
        if self._private:
            raise Unsharable()
        await self._embed._core.request("@O", bytes(address) + bytes(recipient))

    def unshare_threadsafe(self, recipient: Ghid) -> None:
        """Takes a share back (the owner only, dynamic objects only): the next
        frame, published at once, is encrypted under a new key that the other
        recipients and the agent's other devices get and `recipient` never
        does. It keeps what it already read; it reads nothing published from
        then on."""
        self._embed._core.call(self._unshare(recipient))

    async def unshare_async(self, recipient: Ghid) -> None:
        """`unshare_threadsafe`, awaitable from any event loop."""
        await self._embed._core.acall(self._unshare(recipient))

    async def _unshare(self, recipient: Ghid) -> None:
        address = self._live()
        if not isinstance(recipient, Ghid):
            raise TypeError("a recipient is a Ghid")
        if not self.is_owned:
            raise LocallyImmutable("only the agent that made an object can take a share back")
        if not self._dynamic:
            raise LocallyImmutable("a static object cannot be unshared (delete it instead)")
        await self._embed._core.request("%O", bytes(address) + bytes(recipient))

    def shared_with_threadsafe(self) -> List[Ghid]:
        """The identities this agent shared it with and has not taken it back from."""
        return self._embed._core.call(self._shared_with())

    async def shared_with_async(self) -> List[Ghid]:
        """`shared_with_threadsafe`, awaitable from any event loop."""
        return await self._embed._core.acall(self._shared_with())

    async def _shared_with(self) -> List[Ghid]:
        body = await self._embed._core.request("?S", bytes(self._live()))
        return _wire.ghid_list(body)

    def freeze_threadsafe(self) -> AppObj:
        """A static snapshot of the current state, as a new AppObj."""
        return self._embed._core.call(self._freeze())

    async def freeze_async(self) -> AppObj:
        """`freeze_threadsafe`, awaitable from any event loop."""
        return await self._embed._core.acall(self._freeze())

    async def _freeze(self) -> AppObj:
        address = self._live()
        if not self._dynamic:
            raise LocallyImmutable("a static object cannot be frozen")
        body = await self._embed._core.request("*O", bytes(address))
        return await self._embed._get(_wire.ghids(body, 1)[0])

    def hold_threadsafe(self) -> None:
        """Binds to it, so it outlives its author's delete."""
        self._embed._core.call(self._simple("#O"))

    async def hold_async(self) -> None:
        """`hold_threadsafe`, awaitable from any event loop."""
        await self._embed._core.acall(self._simple("#O"))

    def discard_threadsafe(self) -> None:
        """This app is done with it: no more updates; later use raises."""
        self._embed._core.call(self._simple("-O", kill=True))

    async def discard_async(self) -> None:
        """`discard_threadsafe`, awaitable from any event loop."""
        await self._embed._core.acall(self._simple("-O", kill=True))

    def delete_threadsafe(self) -> None:
        """Deletes it everywhere (the author's); later use raises ValueError."""
        self._embed._core.call(self._simple("XO", kill=True))

    async def delete_async(self) -> None:
        """`delete_threadsafe`, awaitable from any event loop."""
        await self._embed._core.acall(self._simple("XO", kill=True))

    def sync_threadsafe(self) -> None:
        """Asks the service to fetch the newest state from the server now."""
        self._embed._core.call(self._simple("~O"))

    async def sync_async(self) -> None:
        """`sync_threadsafe`, awaitable from any event loop."""
        await self._embed._core.acall(self._simple("~O"))

    async def _simple(self, code: str, kill: bool = False) -> None:
        address = self._live()
        await self._embed._core.request(code, bytes(address))
        if kill:
            self._inoperable = True
            self._embed._core.untrack(self)

    # ---- from the link ----------------------------------------------

    def _hgx_current_state(self) -> Optional[bytes]:
        return self._state

    def _hgx_pushed(self, objdef: _wire.ObjDef) -> None:
        self._state = objdef.state
        self._is_link_flag = objdef.is_link
        self._version += 1
        self._embed._core.run_callbacks(self._callbacks_threadsafe, self._callbacks_async, self)

    def _hgx_deleted(self) -> None:
        self._inoperable = True
        self._embed._core.run_callbacks(self._callbacks_threadsafe, self._callbacks_async, self)
        self._embed._core.untrack(self)

    def __repr__(self) -> str:
        return f"<AppObj {self._address.as_str()}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AppObj):
            return NotImplemented
        return (self._address, self._author, self._state) == (
            other._address, other._author, other._state)

    def __hash__(self) -> int:
        return hash(self._address) ^ 3141592


def _check_threadsafe(fn: ThreadsafeCallback) -> ThreadsafeCallback:
    if not callable(fn):
        raise TypeError("a callback must be callable")
    if inspect.iscoroutinefunction(fn):
        raise TypeError("an async def callback is an async callback: use append_async_callback")
    return fn


def _check_async(fn: AsyncCallback) -> AsyncCallback:
    if not asyncio.iscoroutinefunction(fn):
        raise TypeError('an async callback is defined with "async def"')
    return fn
