"""Races between an answer and a push, which the real service produces only
now and then, made certain by a scripted peer on a real websocket: the
service's `>O` answer is followed at once by a `!O` push (or an `XO`
delete) of the same object, before the link has made the object, or while
it refreshes the object after a reconnect."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import List, Optional

from websockets.asyncio.server import ServerConnection, serve

from conftest import wait_for
from hypergolix import DeadObject, Ghid, HypergolixLink
from hypergolix import _wire

ME = Ghid(1, bytes([7]) * 64)
OBJ = Ghid(1, bytes([9]) * 64)
API = bytes(65)


def objdef(state: bytes) -> bytes:
    return _wire.ObjDef(OBJ, ME, False, True, 0, None, False, state).pack()


class ScriptedService:
    """Answers `?I`; answers the n-th `>O` with state `old{n}`, then at
    once sends `then` (a push of `new{n}` or a delete); records every
    request code."""

    def __init__(self, then: str) -> None:
        self.then = then
        self.codes: List[str] = []
        self.fetches = 0
        self._conns: List[ServerConnection] = []
        self.port = 0
        self._ready = threading.Event()
        self._stop: Optional[asyncio.Future[None]] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _handle(self, ws: ServerConnection) -> None:
        self._conns.append(ws)
        async for data in ws:
            assert isinstance(data, bytes)
            msg = _wire.decode(data)
            self.codes.append(msg.code)
            if msg.code == "?I":
                await ws.send(_wire.encode("AK", msg.token, bytes(ME)))
            elif msg.code == ">O":
                n = self.fetches
                self.fetches += 1
                await ws.send(_wire.encode("AK", msg.token, objdef(b"old%d" % n)))
                if self.then == "push":
                    await ws.send(_wire.encode("!O", 1, objdef(b"new%d" % n)))
                else:
                    await ws.send(_wire.encode("XO", 1, bytes(OBJ)))
            elif msg.code != "AK":
                await ws.send(_wire.encode("AK", msg.token, b""))

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0,
                         subprotocols=[_wire.NATIVE_GHIDS]) as server:  # type: ignore[list-item]
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def drop(self) -> None:
        """Closes every connection (the link reconnects)."""
        assert self._loop is not None

        async def close() -> None:
            for ws in self._conns:
                await ws.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)

    def stop(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)


def test_a_push_right_after_the_answer_is_not_lost() -> None:
    svc = ScriptedService("push")
    try:
        link = HypergolixLink(svc.port)
        obj = link.get_obj_threadsafe(OBJ)
        # The push may be applied by the fetch or, if it is read after the
        # fetch resumed, to the object: either way it is not lost.
        wait_for("the push that came after the answer wins", lambda: obj.state == b"new0", 10)
        link.stop()
        assert "-O" not in svc.codes, "the link never drops an object it is fetching"
    finally:
        svc.stop()


def test_a_delete_right_after_the_answer_is_seen() -> None:
    svc = ScriptedService("delete")
    try:
        link = HypergolixLink(svc.port)
        try:
            obj = link.get_obj_threadsafe(OBJ)
        except DeadObject:
            pass  # the delete reached the fetch
        else:
            # Read after the fetch resumed: it reaches the object.
            wait_for("the object learns it was deleted", lambda: obj._inoperable, 10)
        link.stop()
    finally:
        svc.stop()


def test_a_push_during_the_refresh_after_a_reconnect_wins() -> None:
    svc = ScriptedService("push")
    try:
        link = HypergolixLink(svc.port)
        obj = link.get_obj_threadsafe(OBJ)
        wait_for("new0", lambda: obj.state == b"new0", 10)
        svc.drop()
        # The link reconnects and fetches the object again: `old1`, then at
        # once the push `new1`, which must not be overwritten by the answer.
        deadline = time.monotonic() + 10
        while (svc.fetches < 2 or obj.state != b"new1") and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # anything the refresh would still apply, applied
        assert obj.state == b"new1", f"stale after the refresh: {obj.state!r}"
        link.stop()
    finally:
        svc.stop()
