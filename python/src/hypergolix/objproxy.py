"""0.1.0's object classes: `Obj` (bytes), `JsonObj` and `PickleObj`, with
0.1.0's names and semantics: `state` is local until `push()`, one `async
def` `callback`, `ghid`, `binder`, `isalive`. Each operation comes as a
coroutine, `_threadsafe` and `_loopsafe` (0.1.0's "triplicate").

Use `HypergolixLink`/`AppObj` for new apps; these are for apps written for
0.1.0.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Type, TypeVar

from . import _wire
from .exceptions import DeadObject, HGXLinkError, LocallyImmutable, Unsharable
from .ids import ApiID, Ghid, api_id_default

if TYPE_CHECKING:
    from .embed import HGXLink

__all__ = ["Obj", "JsonObj", "PickleObj"]

O = TypeVar("O", bound="Obj")
Callback = Callable[[Any], Awaitable[Any]]


class Obj:
    """An object whose state is bytes."""

    _hgx_DEFAULT_API = api_id_default(1)

    def __init__(
        self,
        state: Any,
        api_id: Optional[ApiID],
        dynamic: bool,
        private: bool,
        ghid: Optional[Ghid] = None,
        binder: Optional[Ghid] = None,
        *,
        hgxlink: HGXLink,
        _legroom: int = 7,
        callback: Optional[Callback] = None,
    ) -> None:
        self._link = hgxlink
        self._state = state
        self._ghid = ghid
        self._binder = binder
        self._api_id = api_id if api_id is not None else self._hgx_DEFAULT_API
        self._dynamic = bool(dynamic)
        self._private = bool(private)
        self._legroom = int(_legroom)
        self._alive = True
        self._callback: Optional[Callback] = None
        self.callback = callback

    # ---- serialisation (override both in a subclass) ----------------

    @staticmethod
    async def hgx_pack(state: Any) -> bytes:
        """The state as bytes."""
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise TypeError(f"an Obj's state is bytes, not {type(state).__name__}")
        return bytes(state)

    @staticmethod
    async def hgx_unpack(packed: bytes) -> Any:
        """The state from bytes."""
        return packed

    # ---- properties -------------------------------------------------

    @property
    def state(self) -> Any:
        """The local state; assigning it does not sync: call `push`."""
        if not self._alive:
            raise DeadObject()
        return self._state

    @state.setter
    def state(self, value: Any) -> None:
        if not self._alive:
            raise DeadObject()
        self._state = value

    @property
    def ghid(self) -> Ghid:
        """Its address."""
        assert self._ghid is not None
        return self._ghid

    @property
    def api_id(self) -> ApiID:
        """Its schema id."""
        return self._api_id

    @property
    def private(self) -> bool:
        """Private to the app token that made it."""
        return self._private

    @private.setter
    def private(self, value: bool) -> None:
        if not self._private and value:
            raise HGXLinkError("non-private objects cannot be made private")
        self._private = bool(value)

    @property
    def dynamic(self) -> bool:
        """Whether it can change."""
        return self._dynamic

    @property
    def binder(self) -> Optional[Ghid]:
        """The identity of the agent that made it."""
        return self._binder

    @property
    def isalive(self) -> bool:
        """False after discard, delete, a delete from elsewhere, or recast."""
        return self._alive

    @property
    def callback(self) -> Optional[Callback]:
        """An `async def cb(obj)` run after each update from elsewhere and
        after a delete."""
        return self._callback

    @callback.setter
    def callback(self, cb: Optional[Callback]) -> None:
        if cb is None:
            return
        if not asyncio.iscoroutinefunction(cb):
            raise TypeError('Callback must be defined with "async def".')
        self._callback = cb
        self._link._core.pin(self, self._alive)

    @callback.deleter
    def callback(self) -> None:
        self._callback = None
        self._link._core.pin(self, False)

    # ---- operations (coroutines; see the _threadsafe/_loopsafe twins) --

    def _live(self) -> Ghid:
        if not self._alive:
            raise DeadObject()
        if self._ghid is None:
            raise HGXLinkError("the object has no ghid: make it with HGXLink.new")
        return self._ghid

    async def push(self) -> None:
        """Sends the current state."""
        await self._link._core.acall(self._push())

    async def _push(self) -> None:
        ghid = self._live()
        if self._link._core.whoami != self._binder:
            raise LocallyImmutable("No access rights to mutate object.")
        if not self._dynamic:
            raise LocallyImmutable("Cannot update a static object.")
        packed = await self.hgx_pack(self._state)
        objdef = _wire.ObjDef(ghid, None, self._private, False, self._legroom, None, False, packed)
        await self._link._core.request("!O", objdef.pack())

    async def sync(self) -> None:
        """Asks the service to fetch the newest state from the server."""
        await self._link._core.acall(self._simple("~O"))

    async def share(self, recipient: Ghid) -> None:
        """Shares it with another identity."""
        await self._link._core.acall(self._share(recipient))

    async def _share(self, recipient: Ghid) -> None:
        ghid = self._live()
        if self._private:
            raise Unsharable("Cannot share a private object.")
        await self._link._core.request("@O", bytes(ghid) + bytes(recipient))

    async def unshare(self, recipient: Ghid) -> None:
        """Takes a share back (the owner only, dynamic objects only): the
        recipient reads nothing published from then on."""
        await self._link._core.acall(self._unshare(recipient))

    async def _unshare(self, recipient: Ghid) -> None:
        ghid = self._live()
        if not self._dynamic:
            raise LocallyImmutable("Cannot unshare a static object (delete it instead).")
        await self._link._core.request("%O", bytes(ghid) + bytes(recipient))

    async def shared_with(self) -> list[Ghid]:
        """The identities this agent shared it with and has not taken it back from."""
        return await self._link._core.acall(self._shared_with())

    async def _shared_with(self) -> list[Ghid]:
        body = await self._link._core.request("?S", bytes(self._live()))
        return _wire.ghid_list(body)

    async def freeze(self: O) -> O:
        """A static snapshot of the current state, of the same class."""
        return await self._link._core.acall(self._freeze())

    async def _freeze(self: O) -> O:
        ghid = self._live()
        if not self._dynamic:
            raise LocallyImmutable("Cannot freeze a static object.")
        body = await self._link._core.request("*O", bytes(ghid))
        return await self._link._get_as(type(self), _wire.ghids(body, 1)[0])

    async def hold(self) -> None:
        """Binds to it, so it outlives its author's delete."""
        await self._link._core.acall(self._simple("#O"))

    async def discard(self) -> None:
        """Stops following it; this object dies."""
        await self._link._core.acall(self._simple("-O", kill=True))

    async def delete(self) -> None:
        """Deletes it everywhere (its author only)."""
        await self._link._core.acall(self._simple("XO", kill=True))

    async def recast(self, cls: Type[O]) -> O:
        """The same object as another class; this one dies."""
        return await self._link._core.acall(self._recast(cls))

    async def _recast(self, cls: Type[O]) -> O:
        ghid = self._live()
        packed = await self.hgx_pack(self._state)
        new = cls(
            await cls.hgx_unpack(packed), self._api_id, self._dynamic, self._private,
            ghid, self._binder, hgxlink=self._link, _legroom=self._legroom,
        )
        new._callback = self._callback
        self._alive = False
        self._link._core.untrack(self)
        self._link._core.track(new)
        self._link._core.pin(new, new._callback is not None)
        return new

    async def _simple(self, code: str, kill: bool = False) -> None:
        ghid = self._live()
        await self._link._core.request(code, bytes(ghid))
        if kill:
            self._alive = False
            self._link._core.untrack(self)

    # ---- 0.1.0's triplicate twins -----------------------------------

    def push_threadsafe(self) -> None:
        """`push`, blocking."""
        self._link._core.call(self._push())

    def sync_threadsafe(self) -> None:
        """`sync`, blocking."""
        self._link._core.call(self._simple("~O"))

    def share_threadsafe(self, recipient: Ghid) -> None:
        """`share`, blocking."""
        self._link._core.call(self._share(recipient))

    def unshare_threadsafe(self, recipient: Ghid) -> None:
        """`unshare`, blocking."""
        self._link._core.call(self._unshare(recipient))

    def shared_with_threadsafe(self) -> list[Ghid]:
        """`shared_with`, blocking."""
        return self._link._core.call(self._shared_with())

    def freeze_threadsafe(self: O) -> O:
        """`freeze`, blocking."""
        return self._link._core.call(self._freeze())

    def hold_threadsafe(self) -> None:
        """`hold`, blocking."""
        self._link._core.call(self._simple("#O"))

    def discard_threadsafe(self) -> None:
        """`discard`, blocking."""
        self._link._core.call(self._simple("-O", kill=True))

    def delete_threadsafe(self) -> None:
        """`delete`, blocking."""
        self._link._core.call(self._simple("XO", kill=True))

    def recast_threadsafe(self, cls: Type[O]) -> O:
        """`recast`, blocking."""
        return self._link._core.call(self._recast(cls))

    push_loopsafe = push
    sync_loopsafe = sync
    share_loopsafe = share
    unshare_loopsafe = unshare
    shared_with_loopsafe = shared_with
    freeze_loopsafe = freeze
    hold_loopsafe = hold
    discard_loopsafe = discard
    delete_loopsafe = delete
    recast_loopsafe = recast

    # ---- from the link ----------------------------------------------

    @property
    def address(self) -> Ghid:
        """`ghid` (what the link tracks objects by)."""
        return self.ghid

    def _hgx_current_state(self) -> Optional[bytes]:
        return None  # a reconnect always re-applies the fetched state

    def _hgx_pushed(self, objdef: _wire.ObjDef) -> None:
        self._link._core.spawn(self._apply(objdef.state))

    async def _apply(self, packed: bytes) -> None:
        self._state = await self.hgx_unpack(packed)
        self._run_callback()

    def _hgx_deleted(self) -> None:
        self._alive = False
        self._run_callback()
        self._link._core.untrack(self)

    def _run_callback(self) -> None:
        if self._callback is not None:
            self._link._core.run_callbacks([], [self._callback], self)

    def __eq__(self, other: object) -> bool:
        try:
            return bool(
                self._ghid == other._ghid  # type: ignore[attr-defined]
                and self._binder == other._binder  # type: ignore[attr-defined]
                and self._state == other._state  # type: ignore[attr-defined]
            )
        except AttributeError as exc:
            raise TypeError(
                f"Incomparable types: {type(self).__name__}, {type(other).__name__}"
            ) from exc

    def __hash__(self) -> int:
        return hash(self._ghid) ^ 3141592

    def __repr__(self) -> str:
        return f"<{type(self).__name__} with state {self._state!r} at {self._ghid}>"


class JsonObj(Obj):
    """An object whose state is JSON (compact, UTF-8)."""

    _hgx_DEFAULT_API = api_id_default(3)

    @staticmethod
    async def hgx_pack(state: Any) -> bytes:
        """Compact JSON."""
        return json.dumps(state, separators=(",", ":")).encode("utf-8")

    @staticmethod
    async def hgx_unpack(packed: bytes) -> Any:
        """Parsed JSON."""
        return json.loads(packed.decode("utf-8"))


class PickleObj(Obj):
    """An object whose state is a pickle (protocol 4), as 0.1.0 had.

    Unpickling runs code chosen by whoever wrote the state: use it only
    between agents that trust each other completely; prefer `JsonObj`."""

    _hgx_DEFAULT_API = api_id_default(2)

    @staticmethod
    async def hgx_pack(state: Any) -> bytes:
        """A pickle, protocol 4."""
        return pickle.dumps(state, protocol=4)

    @staticmethod
    async def hgx_unpack(packed: bytes) -> Any:
        """The unpickled state."""
        return pickle.loads(packed)
