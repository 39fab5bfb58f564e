"""The link's machinery, shared by both APIs: a thread running an asyncio
loop, one websocket to the service, requests and answers, pushes, the
objects handed out, reconnecting.

Everything here runs on the link's loop (`LinkCore.loop`); `call` and
`acall` bring a coroutine to it from any other thread or loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
import weakref
from typing import (
    Any,
    Awaitable,
    Callable,
    Coroutine,
    Dict,
    List,
    Optional,
    Protocol,
    Tuple,
    TypeVar,
)

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from . import _wire
from .exceptions import ConnectionLost, DeadObject, DoesNotExist, HGXLinkError, from_nak
from .ids import ApiID, AppToken, Ghid

logger = logging.getLogger("hypergolix")

T = TypeVar("T")

#: How long a request waits for the service by default (seconds).
DEFAULT_TIMEOUT = 60.0
#: The longest wait between reconnection attempts (seconds).
MAX_BACKOFF = 5.0
#: Messages larger than this from the service are refused (bytes).
MAX_MESSAGE = 128 * 1024 * 1024

#: A share handler as the core runs it: `(ghid, origin, api_id)` on the loop.
ShareHandler = Callable[[Ghid, Ghid, ApiID], Coroutine[Any, Any, None]]


class Tracked(Protocol):
    """What an object handed out by a link implements."""

    @property
    def address(self) -> Ghid: ...

    def _hgx_pushed(self, objdef: _wire.ObjDef) -> None: ...

    def _hgx_deleted(self) -> None: ...

    def _hgx_current_state(self) -> Optional[bytes]: ...


class LinkCore:
    """One connection to the service, kept up until `stop`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        unix: Optional[str],
        native_ghids: bool,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self.host = host
        self.port = port
        self.unix = unix
        self.native_ghids = native_ghids
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        where = f"unix:{unix}" if unix else f"ws://{host}:{port}/"
        self.where = f"the Hypergolix service at {where}"
        self.loop = asyncio.new_event_loop()
        self.whoami: Optional[Ghid] = None
        self.token: Optional[AppToken] = None
        self.share_handlers: Dict[ApiID, ShareHandler] = {}
        self.on_share_result: Optional[Callable[[Ghid, Ghid, bool], None]] = None
        self._objs: Dict[Ghid, "weakref.WeakSet[Any]"] = {}
        # Objects with callbacks, held strongly: an app that registered a
        # callback and dropped its reference still hears of updates.
        self._pinned: Dict[int, Any] = {}
        self._pending: Dict[int, "asyncio.Future[Tuple[bytes, int]]"] = {}
        # Messages are numbered as they arrive, so a fetch can tell which
        # pushes came after its answer.
        self._rx = 0
        # Objects being fetched (`>O` in flight, by count), and the newest
        # push or delete for each that arrived while no object held it:
        # the fetch applies it, so nothing lands in the gap between the
        # answer and the object's tracking.
        self._fetching: Dict[Ghid, int] = {}
        self._late: Dict[Ghid, Tuple[int, Optional[_wire.ObjDef]]] = {}
        self._ws: Optional[ClientConnection] = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name="hypergolix-link", daemon=True
        )
        # Threadsafe callbacks and handlers, one at a time, in order.
        self.callback_thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="hypergolix-callbacks"
        )
        self._maintainer: Optional["asyncio.Task[None]"] = None
        # Made on the loop (asyncio primitives bind to a loop on 3.9).
        self._up: Optional[asyncio.Event] = None
        self._async_jobs: Optional["asyncio.Queue[Callable[[], Awaitable[None]]]"] = None

    # ---- the thread and the loop ------------------------------------

    def start(self) -> None:
        """Starts the thread and connects; raises if the service is not there."""
        self._thread.start()
        first: "concurrent.futures.Future[None]" = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self._begin, first)
        try:
            first.result()
        except BaseException:
            self.stop()
            raise

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            # Stopped: end every task of the link, then the loop.
            tasks = asyncio.all_tasks(self.loop)
            for t in tasks:
                t.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def _begin(self, first: "concurrent.futures.Future[None]") -> None:
        self._up = asyncio.Event()
        self._async_jobs = asyncio.Queue()
        self._maintainer = self.loop.create_task(self._maintain(first))
        self.loop.create_task(self._run_async_jobs())

    def in_loop(self) -> bool:
        """Whether the caller runs on the link's loop."""
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs `coro` on the link's loop and waits for it (any thread but
        the loop's own)."""
        if self.in_loop():
            coro.close()
            raise HGXLinkError(
                "a _threadsafe method was called on the link's own event loop "
                "(from an async callback or handler): await its _async twin instead"
            )
        if self._closed:
            coro.close()
            raise HGXLinkError("the link was stopped")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """Awaits `coro` on the link's loop, from the link's loop or any other."""
        if self.in_loop():
            return await coro
        if self._closed:
            coro.close()
            raise HGXLinkError("the link was stopped")
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(coro, self.loop)
        )

    def stop(self) -> None:
        """Closes the connection and ends the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():

            async def close() -> None:
                if self._maintainer is not None:
                    self._maintainer.cancel()
                if self._ws is not None:
                    await self._ws.close()

            if self.in_loop():
                self.loop.create_task(close())
                self.loop.call_soon(self.loop.stop)
            else:
                try:
                    asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
                except (concurrent.futures.TimeoutError, RuntimeError):
                    pass
                self.loop.call_soon_threadsafe(self.loop.stop)
                if threading.current_thread() is not self._thread:
                    self._thread.join(5)
        self.callback_thread.shutdown(wait=False)

    # ---- the connection ---------------------------------------------

    async def _open(self) -> ClientConnection:
        protocols = [_wire.NATIVE_GHIDS] if self.native_ghids else None
        kwargs: Dict[str, Any] = dict(
            subprotocols=protocols,
            max_size=MAX_MESSAGE,
            compression=None,
            open_timeout=self.connect_timeout,
        )
        if self.unix:
            return await unix_connect(self.unix, uri="ws://localhost/", **kwargs)
        return await connect(f"ws://{self.host}:{self.port}/", **kwargs)

    async def _maintain(self, first: "concurrent.futures.Future[None]") -> None:
        backoff = 0.05
        deadline = self.loop.time() + self.connect_timeout
        while not self._closed:
            try:
                ws = await self._open()
            except (OSError, WebSocketException, asyncio.TimeoutError) as exc:
                if not first.done() and self.loop.time() >= deadline:
                    first.set_exception(
                        HGXLinkError(
                            f"cannot reach {self.where}: {exc} (is `hypergolix start` running?)"
                        )
                    )
                    return
                logger.debug("reconnecting in %.2f s: %s", backoff, exc)
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self._ws = ws
            reader = self.loop.create_task(self._read(ws))
            try:
                await self._handshake()
            except Exception as exc:  # the service refused the replay
                logger.warning("the service refused the link's handshake: %s", exc)
                if not first.done():
                    first.set_exception(exc)
                    await ws.close()
                    return
                await ws.close()
            else:
                backoff = 0.05
                assert self._up is not None
                self._up.set()
                if not first.done():
                    first.set_result(None)
            await reader
            assert self._up is not None
            self._up.clear()
            self._ws = None
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(
                        ConnectionLost(f"the connection to {self.where} dropped")
                    )
            self._pending.clear()
            if not self._closed:
                logger.info("lost %s; reconnecting", self.where)

    async def _handshake(self) -> None:
        """`?I`, then everything the service forgot: the token, the
        api_ids, and the state of every object handed out."""
        me = await self.request("?I", b"", handshake=True)
        self.whoami = _wire.ghids(me, 1)[0]
        if self.token is not None:
            await self.request("+T", bytes(self.token), handshake=True)
        for api in list(self.share_handlers):
            await self.request("+A", bytes(api), handshake=True)
        for address, objs in list(self._objs.items()):
            live = list(objs)
            if not live:
                del self._objs[address]
                continue
            try:
                objdef = await self.fetch(address, handshake=True)
            except DoesNotExist:
                for o in live:
                    o._hgx_deleted()
                continue
            except DeadObject:
                continue  # the delete pushed meanwhile has reached them
            for o in live:
                if o._hgx_current_state() != objdef.state:
                    o._hgx_pushed(objdef)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                if isinstance(data, str):
                    logger.warning("ignored a text frame from the service")
                    continue
                self._rx += 1
                try:
                    msg = _wire.decode(data)
                except _wire.WireError as exc:
                    logger.warning("ignored a malformed message: %s", exc)
                    continue
                if msg.code in ("AK", "NK"):
                    fut = self._pending.pop(msg.token, None)
                    if fut is None or fut.done():
                        continue
                    if msg.code == "AK":
                        fut.set_result((msg.body, self._rx))
                    else:
                        fut.set_exception(from_nak(msg.body))
                    continue
                await self._push(ws, msg)
        except ConnectionClosed:
            pass

    async def request(self, code: str, body: bytes, *, handshake: bool = False) -> bytes:
        """Sends one request and returns the `AK` body; raises the
        service's refusal (`IPCError`) or `HGXLinkError`."""
        answer, _ = await self._request(code, body, handshake=handshake)
        return answer

    async def _request(self, code: str, body: bytes, *, handshake: bool) -> Tuple[bytes, int]:
        """`request`, with the arrival number of the answer."""
        if self._closed:
            raise HGXLinkError("the link was stopped")
        if not handshake:
            assert self._up is not None
            if not self._up.is_set():
                try:
                    await asyncio.wait_for(self._up.wait(), self.timeout)
                except asyncio.TimeoutError:
                    raise HGXLinkError(
                        f"not connected to {self.where} for {self.timeout:g} s"
                    ) from None
        ws = self._ws
        if ws is None:
            raise ConnectionLost(f"the connection to {self.where} dropped")
        token = random.getrandbits(16)
        while token in self._pending:
            token = random.getrandbits(16)
        fut: "asyncio.Future[Tuple[bytes, int]]" = self.loop.create_future()
        self._pending[token] = fut
        try:
            await ws.send(_wire.encode(code, token, body))
            return await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError:
            raise HGXLinkError(
                f"{self.where} did not answer {code} within {self.timeout:g} s"
            ) from None
        except ConnectionClosed:
            raise ConnectionLost(f"the connection to {self.where} dropped") from None
        finally:
            self._pending.pop(token, None)
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled():
                fut.exception()  # seen: a drop during the send already raised

    async def fetch(self, address: Ghid, *, handshake: bool = False) -> _wire.ObjDef:
        """`>O`: the object's definition (the service tracks it for this
        connection from then on)."""
        self._fetching[address] = self._fetching.get(address, 0) + 1
        try:
            body, seq = await self._request(">O", bytes(address), handshake=handshake)
            late = self._late.get(address)
        finally:
            left = self._fetching.pop(address) - 1
            if left:
                self._fetching[address] = left
            else:
                self._late.pop(address, None)
        objdef = _wire.ObjDef.parse(body)
        if objdef.address is None:
            objdef.address = address
        if late is not None and late[0] > seq:
            # Pushed after the answer, before anything held the object.
            if late[1] is None:
                raise DeadObject("the object was deleted by its author")
            objdef.state = late[1].state
            objdef.is_link = late[1].is_link
        return objdef

    # ---- pushes -----------------------------------------------------

    async def _push(self, ws: ClientConnection, msg: _wire.Message) -> None:
        def answer(body: bytes) -> Awaitable[None]:
            return ws.send(_wire.encode("AK", msg.token, body))

        try:
            if msg.code == "!O":
                objdef = _wire.ObjDef.parse(msg.body)
                await answer(b"\x01")
                if objdef.address is None:
                    return
                live = self.live(objdef.address)
                if objdef.address in self._fetching:
                    # Newer than the answer being applied, held or not.
                    self._late[objdef.address] = (self._rx, objdef)
                elif not live:
                    # Nobody holds it any more: stop the flow (as 0.1.0).
                    self.spawn(self._discard_quietly(objdef.address))
                for o in live:
                    o._hgx_pushed(objdef)
            elif msg.code == "XO":
                (address,) = _wire.ghids(msg.body, 1)
                await answer(b"\x01")
                if address in self._fetching:
                    self._late[address] = (self._rx, None)
                for o in self.live(address):
                    o._hgx_deleted()
                self._objs.pop(address, None)
            elif msg.code == "@O":
                if len(msg.body) != 195:
                    raise _wire.WireError("a share push is 195 bytes")
                address, origin = _wire.ghids(msg.body[:130], 2)
                api = ApiID(msg.body[130:])
                await answer(b"\x01")
                handler = self.share_handlers.get(api)
                if handler is None:
                    self.spawn(self._deregister_quietly(api))
                else:
                    self.spawn(handler(address, origin, api))
            elif msg.code in ("^S", "^F"):
                address, recipient = _wire.ghids(msg.body, 2)
                await answer(b"")
                cb = self.on_share_result
                if cb is not None:
                    self.callback_thread.submit(
                        _guarded, cb, address, recipient, msg.code == "^S"
                    )
            elif msg.code == "?I":
                await answer(b"")
            else:
                await ws.send(
                    _wire.encode("NK", msg.token, b"\x00\x00" + repr(msg.code.encode()).encode())
                )
        except (_wire.WireError, ValueError) as exc:
            logger.warning("ignored a malformed %s push: %s", msg.code, exc)
            await ws.send(_wire.encode("NK", msg.token, b"\xff\xff" + str(exc).encode()))

    async def _discard_quietly(self, address: Ghid) -> None:
        try:
            await self.request("-O", bytes(address))
        except Exception as exc:
            logger.debug("discarding %s: %s", address, exc)

    async def _deregister_quietly(self, api: ApiID) -> None:
        logger.warning("a share arrived for an api_id with no handler: deregistering it")
        try:
            await self.request("-A", bytes(api))
        except Exception as exc:
            logger.debug("deregistering an api_id: %s", exc)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs `coro` as a task of the loop, logging what it raises."""
        task = self.loop.create_task(coro)
        task.add_done_callback(_reap)

    # ---- objects and callbacks --------------------------------------

    def track(self, obj: Tracked) -> None:
        """Keeps `obj` up to date (weakly: a dropped object is forgotten)."""
        self._objs.setdefault(obj.address, weakref.WeakSet()).add(obj)

    def pin(self, obj: Any, keep: bool) -> None:
        """Holds `obj` strongly while `keep` (it has callbacks)."""
        if keep:
            self._pinned[id(obj)] = obj
        else:
            self._pinned.pop(id(obj), None)

    def untrack(self, obj: Tracked) -> None:
        """Stops updating `obj`."""
        self._pinned.pop(id(obj), None)
        objs = self._objs.get(obj.address)
        if objs is not None:
            objs.discard(obj)
            if not objs:
                del self._objs[obj.address]

    def live(self, address: Ghid) -> List[Any]:
        """The objects handed out for `address`."""
        objs = self._objs.get(address)
        return list(objs) if objs is not None else []

    def run_callbacks(
        self,
        threadsafe: List[Callable[[Any], Any]],
        async_: List[Callable[[Any], Awaitable[Any]]],
        obj: Any,
    ) -> None:
        """Threadsafe callbacks on the callback thread, async ones on the
        loop, each kind in registration order and one update after another."""
        if threadsafe:
            fns = list(threadsafe)

            def job() -> None:
                for fn in fns:
                    _guarded(fn, obj)

            self.callback_thread.submit(job)
        if async_:
            coros = list(async_)

            async def ajob() -> None:
                for fn in coros:
                    try:
                        await fn(obj)
                    except Exception:
                        logger.exception("an async callback raised")

            assert self._async_jobs is not None
            self._async_jobs.put_nowait(ajob)

    async def _run_async_jobs(self) -> None:
        assert self._async_jobs is not None
        while True:
            job = await self._async_jobs.get()
            await job()


def _guarded(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("a threadsafe callback raised")


def _reap(task: "asyncio.Task[Any]") -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error("a handler raised", exc_info=exc)
