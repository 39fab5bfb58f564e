"""The seed API (`HypergolixLink`, `AppObj`) against real services: two
agents through a real `hypergolix serve`, every operation in both
flavours, both callback kinds, errors, and a kill -9 of the service."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import List

import pytest

from conftest import Agents, Service, wait_for
from hypergolix import (
    ApiID,
    AppObj,
    AppToken,
    DeadObject,
    DoesNotExist,
    Ghid,
    HGXLinkError,
    HypergolixLink,
    IPCError,
    LocallyImmutable,
    UnknownRecipient,
    Unsharable,
)

API = ApiID(bytes(63) + b"\x21")


class Seen:
    """States seen by callbacks, in order, with the thread they ran on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: List[bytes] = []
        self.threads: List[str] = []

    def record(self, obj: AppObj, tag: str = "") -> None:
        with self.lock:
            self.states.append(tag.encode() + obj.state)
            self.threads.append(threading.current_thread().name)

    def has(self, state: bytes) -> bool:
        with self.lock:
            return state in self.states


@pytest.fixture()
def links(agents: Agents):  # type: ignore[no-untyped-def]
    a = HypergolixLink(agents.a.port)
    b = HypergolixLink(agents.b.port)
    a.new_token_threadsafe()
    b.new_token_threadsafe()
    yield a, b
    a.stop()
    b.stop()


def test_whoami_tokens_and_startup(agents: Agents) -> None:
    link = HypergolixLink(ipc_port=agents.a.port)
    me = link.whoami_threadsafe()
    assert me == asyncio.run(link.whoami_async())
    assert link.app_token is None
    token = link.new_token_threadsafe()
    assert isinstance(token, AppToken) and link.app_token == token
    obj = link.new_obj_threadsafe(b"boot", api_id=API)
    link.register_startup_threadsafe(obj)
    link.stop()

    again = HypergolixLink(agents.a.port)
    assert again.set_token_threadsafe(token) == obj.address
    assert again.get_obj_threadsafe(obj.address).state == b"boot"
    again.deregister_startup_threadsafe()
    assert again.get_startup_threadsafe() is None
    again.stop()


def test_threadsafe_flavour_end_to_end(links) -> None:  # type: ignore[no-untyped-def]
    a, b = links
    got: List[AppObj] = []
    seen = Seen()

    def handler(obj: AppObj) -> None:
        got.append(obj)
        obj.append_threadsafe_callback(seen.record)

    assert b.register_api_threadsafe(API, handler) is True
    obj = a.new_obj_threadsafe(b"v0", api_id=API)
    assert obj.is_owned and obj.mutable and obj.is_dynamic and obj.is_link is False
    assert obj.author == a.whoami_threadsafe() and obj.api_id == API
    a.share_obj_threadsafe(obj, b.whoami_threadsafe())
    wait_for("B's handler gets the object", lambda: len(got) == 1)
    theirs = got[0]
    assert theirs.address == obj.address and theirs.state == b"v0"
    assert not theirs.is_owned and not theirs.mutable

    for i in range(1, 6):
        obj.state = b"v%d" % i  # the setter wraps update for mutable objects
    a.update_obj_threadsafe(obj, b"v6")
    wait_for("B sees v6", lambda: seen.has(b"v6"))
    assert theirs.state == b"v6"
    # Pushes reach the callback in order, on the callback thread.
    assert seen.states == sorted(seen.states, key=lambda s: int(s[1:]))
    assert all(t.startswith("hypergolix-callbacks") for t in seen.threads)

    with pytest.raises(LocallyImmutable):
        theirs.state = b"evil"
    with pytest.raises(LocallyImmutable):
        theirs.update_threadsafe(b"evil")

    frozen = a.freeze_obj_threadsafe(obj)
    assert not frozen.is_dynamic and frozen.is_link is None and frozen.state == b"v6"
    with pytest.raises(AttributeError):
        frozen.state = b"again"  # a static state is set once
    with pytest.raises(LocallyImmutable):
        frozen.freeze_threadsafe()

    theirs.hold_threadsafe()
    b.hold_obj_threadsafe(theirs)
    theirs.sync_threadsafe()
    b.discard_obj_threadsafe(theirs)
    with pytest.raises(ValueError):
        theirs.state
    # Discarded: fetched again, it is a fresh object.
    back = b.get_obj_threadsafe(obj.address)
    assert back is not theirs and back.state == b"v6"


def test_async_flavour_from_the_apps_own_loop(links) -> None:  # type: ignore[no-untyped-def]
    a, b = links
    order: List[str] = []
    first_done = threading.Event()
    done = threading.Event()

    async def main() -> None:
        shared: "asyncio.Queue[AppObj]" = asyncio.Queue()
        app_loop = asyncio.get_running_loop()

        async def handler(obj: AppObj) -> None:
            # Runs on the link's loop; hand it to the app's loop.
            app_loop.call_soon_threadsafe(shared.put_nowait, obj)

        assert await b.register_api_async(API, handler)
        obj = await a.new_obj_async(b"a0", api_id=API)
        await a.share_obj_async(obj, await b.whoami_async())
        theirs = await asyncio.wait_for(shared.get(), 20)

        async def first(o: AppObj) -> None:
            order.append("first:" + o.state.decode())

        async def second(o: AppObj) -> None:
            order.append("second:" + o.state.decode())
            # Inside an async callback, the _async methods work (the link's
            # loop); the _threadsafe ones refuse with a clear error.
            with pytest.raises(HGXLinkError, match="_async twin"):
                o.hold_threadsafe()
            await o.hold_async()
            if o.state == b"a1":
                first_done.set()
            if o.state == b"a2":
                done.set()

        theirs.append_async_callback(second)
        theirs.prepend_async_callback(first)
        assert theirs.async_callbacks == [first, second]
        await obj.update_async(b"a1")
        # A callback reads the state when it runs: let a1's run first.
        await asyncio.get_running_loop().run_in_executor(None, first_done.wait, 20)
        await a.update_obj_async(obj, b"a2")
        await asyncio.get_running_loop().run_in_executor(None, done.wait, 20)
        frozen = await a.freeze_obj_async(obj)
        assert frozen.state == b"a2"
        await a.hold_obj_async(frozen)
        await b.discard_obj_async(theirs)
        await a.delete_obj_async(obj)
        with pytest.raises(DeadObject):
            await obj.update_async(b"late")

    asyncio.run(main())
    assert done.is_set()
    assert order[:2] == ["first:a1", "second:a1"] and order[2:4] == ["first:a2", "second:a2"]


def test_callbacks_remove_clear_and_delete_reaching_the_other_side(links) -> None:  # type: ignore[no-untyped-def]
    a, b = links
    obj = AppObj.from_threadsafe(a, b"d0", api_id=API)
    theirs_list: List[AppObj] = []
    b.register_api_threadsafe(API, theirs_list.append)
    obj.share_threadsafe(b.whoami_threadsafe())
    wait_for("shared", lambda: bool(theirs_list))
    theirs = theirs_list[0]
    seen, other = Seen(), Seen()
    theirs.append_threadsafe_callback(seen.record)
    theirs.append_threadsafe_callback(other.record)
    theirs.remove_threadsafe_callback(other.record)
    with pytest.raises(ValueError):
        theirs.remove_threadsafe_callback(other.record)
    assert theirs.threadsafe_callbacks == [seen.record]

    async def never(o: AppObj) -> None:  # pragma: no cover - must not run
        raise AssertionError("cleared")

    theirs.append_async_callback(never)
    theirs.clear_async_callbacks()
    with pytest.raises(ValueError):
        theirs.remove_async_callback(never)
    with pytest.raises(TypeError):
        theirs.append_async_callback(seen.record)  # type: ignore[arg-type]

    obj.update_threadsafe(b"d1")
    wait_for("B sees d1", lambda: seen.has(b"d1"))
    assert not other.has(b"d1")

    deleted = threading.Event()
    theirs.clear_threadsafe_callbacks()
    theirs.append_threadsafe_callback(lambda o: deleted.set())
    obj.delete_threadsafe()
    with pytest.raises(ValueError):
        obj.state
    wait_for("B sees the delete", deleted.is_set)
    with pytest.raises(DeadObject):
        theirs.state
    with pytest.raises(IPCError):
        b.get_obj_threadsafe(obj.address)


def test_private_objects_stay_with_their_token(agents: Agents) -> None:
    app = HypergolixLink(agents.a.port)
    app.new_token_threadsafe()
    secret = app.new_obj_threadsafe(b"mine", private=True)
    assert secret.private
    with pytest.raises(Unsharable):
        secret.share_threadsafe(app.whoami_threadsafe())
    other = HypergolixLink(agents.a.port)
    other.new_token_threadsafe()
    with pytest.raises(DoesNotExist) as refused:
        other.get_obj_threadsafe(secret.address)
    assert refused.value.code == 0x0008
    other.stop()
    app.stop()


def test_a_service_on_a_unix_socket(agents: Agents) -> None:
    path = agents.root / "u.sock"
    svc = Service(agents.root / "u", agents.server.url, ipc=f"unix:{path}")
    try:
        assert svc.addr == f"unix:{path}"
        app = HypergolixLink(unix=str(path))
        app.new_token_threadsafe()
        obj = app.new_obj_threadsafe(b"over a unix socket")
        second = HypergolixLink(unix=str(path))
        second.new_token_threadsafe()
        again = second.get_obj_threadsafe(obj.address)
        assert again.state == b"over a unix socket"
        seen = Seen()
        again.append_threadsafe_callback(seen.record)
        obj.update_threadsafe(b"still local")
        wait_for("the update over the unix socket", lambda: b"still local" in seen.states)

        async def stop_from_the_apps_loop() -> None:
            await second.stop_async()
            with pytest.raises(HGXLinkError, match="stopped"):
                await second.get_obj_async(obj.address)

        asyncio.run(stop_from_the_apps_loop())
        app.stop()
        with pytest.raises(HGXLinkError):
            HypergolixLink(unix=str(agents.root / "nothing.sock"), connect_timeout=2)
    finally:
        svc.stop()


def test_bad_input_is_refused_clearly(links) -> None:  # type: ignore[no-untyped-def]
    a, _ = links
    for bad in (b"x" * 63, b"\x01" + b"x" * 64, b"x" * 66):
        with pytest.raises(ValueError, match="api_id"):
            a.new_obj_threadsafe(b"s", api_id=bad)
    # The 64-byte and 65-byte (leading 00) forms are the same api_id.
    short = a.new_obj_threadsafe(b"s", api_id=b"\x05" * 64)
    long = a.new_obj_threadsafe(b"s", api_id=b"\x00" + b"\x05" * 64)
    assert short.api_id == long.api_id == ApiID(b"\x05" * 64)
    with pytest.raises(TypeError, match="bytes"):
        a.new_obj_threadsafe("text, not bytes")
    with pytest.raises(TypeError):
        short.update_threadsafe(12)
    with pytest.raises(TypeError):
        a.get_obj_threadsafe(b"not a ghid")
    with pytest.raises(ValueError):
        a.set_token_threadsafe(b"short")
    with pytest.raises(IPCError) as unknown:
        a.set_token_threadsafe(b"\x07" * 16)
    assert unknown.value.code is not None and unknown.value.message
    # A recipient no server has heard of: its own exception and NK code.
    with pytest.raises(UnknownRecipient) as nobody:
        short.share_threadsafe(Ghid(1, b"\x5a" * 64))
    assert nobody.value.code == 0x0100 and "not known" in str(nobody.value)


def test_reconnect_after_kill_9(agents: Agents) -> None:
    a = HypergolixLink(agents.a.port, timeout=5)
    b = HypergolixLink(agents.b.port, timeout=30)
    a.new_token_threadsafe()
    b.new_token_threadsafe()
    got: List[AppObj] = []
    b.register_api_threadsafe(API, got.append)
    obj = a.new_obj_threadsafe(b"r0", api_id=API)
    obj.share_threadsafe(b.whoami_threadsafe())
    wait_for("shared", lambda: bool(got))
    seen = Seen()
    got[0].append_threadsafe_callback(seen.record)

    agents.b.kill9()
    obj.update_threadsafe(b"r1")  # made while B's service is down
    agents.b.restart()
    # B's link comes back by itself, re-sends its token and api_id, and
    # fetches the object it holds: its callback sees the missed state.
    wait_for("B catches up after its restart", lambda: seen.has(b"r1"), timeout=40)
    obj.update_threadsafe(b"r2")
    wait_for("B sees r2", lambda: seen.has(b"r2"))
    late = a.new_obj_threadsafe(b"late share", api_id=API)
    late.share_threadsafe(b.whoami_threadsafe())
    wait_for("the re-registered api_id gets shares", lambda: len(got) == 2)

    agents.a.kill9()
    with pytest.raises(HGXLinkError):
        obj.update_threadsafe(b"while down")
    agents.a.restart()
    wait_for("A reconnects", lambda: _try_update(obj, b"r3"), timeout=40)
    wait_for("B sees r3", lambda: seen.has(b"r3"))
    a.stop()
    b.stop()


def _try_update(obj: AppObj, state: bytes) -> bool:
    try:
        obj.update_threadsafe(state)
        return True
    except HGXLinkError:
        return False


def test_unshare_takes_access_back(links) -> None:  # type: ignore[no-untyped-def]
    a, b = links
    got: List[AppObj] = []
    seen = Seen()

    def handler(obj: AppObj) -> None:
        got.append(obj)

    api = ApiID(bytes(63) + b"\x44")
    b.register_api_threadsafe(api, handler)
    obj = a.new_obj_threadsafe(b"v1", api_id=api)
    bob = b.whoami_threadsafe()
    assert obj.shared_with_threadsafe() == []
    obj.share_threadsafe(bob)
    wait_for("B's handler gets the object", lambda: len(got) == 1)
    theirs = got[0]
    theirs.append_threadsafe_callback(seen.record)
    assert obj.shared_with_threadsafe() == [bob]
    with pytest.raises(LocallyImmutable):
        theirs.unshare_threadsafe(bob)  # not the owner

    obj.unshare_threadsafe(bob)
    assert obj.shared_with_threadsafe() == []
    obj.update_threadsafe(b"v2 for nobody else")
    # A's own view moves on; B's stays at what it read.
    time.sleep(0.5)
    assert theirs.state == b"v1" and seen.states == []

    obj.share_threadsafe(bob)
    obj.update_threadsafe(b"v3 shared again")
    wait_for("B reads v3", lambda: seen.has(b"v3 shared again"))
    assert theirs.state == b"v3 shared again"
    assert set(seen.states) <= {b"v2 for nobody else", b"v3 shared again"}

    fixed = a.new_obj_threadsafe(b"static", api_id=api, dynamic=False)
    with pytest.raises(LocallyImmutable):
        fixed.unshare_threadsafe(bob)


def test_password_change_and_recovery_words(agents: Agents) -> None:
    """`!P` and `?W` need the account's current password, as the server
    holds it; the words are twelve, new each time."""
    link = HypergolixLink(ipc_port=agents.a.port)
    with pytest.raises(IPCError, match="wrong password"):
        link.change_password_threadsafe("not it", "x")
    link.change_password_threadsafe("correct horse", "battery staple")
    with pytest.raises(IPCError, match="wrong password"):
        link.recovery_words_threadsafe("correct horse")
    words = asyncio.run(link.recovery_words_async("battery staple"))
    assert len(words.split(" ")) == 12
    assert link.recovery_words_threadsafe(b"battery staple") != words
    with pytest.raises(ValueError, match="empty"):
        link.change_password_threadsafe("battery staple", "")
    with pytest.raises(TypeError):
        link.change_password_threadsafe(12, "x")  # type: ignore[arg-type]
    # Back as it was, for the session's other tests.
    asyncio.run(link.change_password_async(b"battery staple", "correct horse"))
    link.stop()
