"""Drives two Hypergolix services with the unmodified 0.1.0 Python link.

Written for the 0.1.0 API only (its imports work there and on our own
package in `python/`), it runs twice: by `wasi-host/tests/python_link.rs`
with the 2017 link from PyPI (the venv of `tests/python/venv.sh`, and
`tests/python/py311-compat` on PYTHONPATH), and by
`python/tests/test_hgxlink_0_1_0.py` with our package. Two phases, because the Rust test kills agent A's service with
-9 and restarts it in between:

    hgxlink_scenario.py first  PORT_A PORT_B STATE_FILE
    hgxlink_scenario.py second PORT_A PORT_B STATE_FILE

`first` covers: new tokens, registering an api, static and dynamic objects,
update, sharing between the two agents with the share handler and the update
callback firing, freeze, hold, discard, delete (seen by the recipient),
private objects invisible to another token, and the startup object. It saves
the tokens and addresses. `second` reconnects with the existing tokens, finds
the startup object, checks every state written in `first` survived, and
shows a live update across agents again.

Every check is an assert; the process exits non-zero on the first failure.
"""
import base64
import json
import sys
import threading
import time

from hypergolix.utils import ApiID, AppToken, Ghid
from hypergolix import HGXLink
from hypergolix.objproxy import Obj

API = ApiID(bytes(63) + b'\x07')
TIMEOUT = 20


def log(*args):
    print('[py]', *args, flush=True)


def wait_for(what, predicate, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError('timed out waiting for ' + what)


def b64(ghid):
    return base64.urlsafe_b64encode(bytes(ghid)).decode()


def unb64(text):
    return Ghid.from_bytes(base64.urlsafe_b64decode(text))


class Shares:
    """A share handler that records what arrived (runs in the link's loop)."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    async def handler(self, ghid, origin, api_id):
        with self.lock:
            self.seen.append((ghid, origin, api_id))

    def has(self, ghid):
        with self.lock:
            return any(g == ghid for g, _, _ in self.seen)

    def origin_of(self, ghid):
        with self.lock:
            return next(o for g, o, _ in self.seen if g == ghid)


class Updates:
    """An update callback that records the states it saw."""

    def __init__(self):
        self.states = []
        self.lock = threading.Lock()

    async def callback(self, obj):
        with self.lock:
            self.states.append(bytes(obj.state))

    def saw(self, state):
        with self.lock:
            return state in self.states


def expect_failure(what, fn):
    try:
        fn()
    except Exception as exc:  # the link raises its own exception types
        log(what, 'refused as expected:', type(exc).__name__, exc)
        return
    raise AssertionError(what + ' should have failed')


def first(port_a, port_b, state_file):
    link_a = HGXLink(ipc_port=port_a)
    link_b = HGXLink(ipc_port=port_b)
    assert link_a.whoami is not None and link_b.whoami is not None
    assert link_a.whoami != link_b.whoami
    log('agents', link_a.whoami, link_b.whoami)

    # New tokens; nothing registered at startup yet.
    assert link_a.register_token_threadsafe() is None
    assert link_b.register_token_threadsafe() is None
    assert isinstance(link_a.token, AppToken)
    assert link_a.token != link_b.token

    shares_b = Shares()
    link_b.register_share_handler_threadsafe(API, shares_b.handler)

    # Static and dynamic objects.
    static = link_a.new_threadsafe(Obj, state=b'static hello', api_id=API,
                                   dynamic=False)
    dyn = link_a.new_threadsafe(Obj, state=b'v0', api_id=API)
    assert static.ghid != dyn.ghid
    assert not static.dynamic and dyn.dynamic
    again = link_a.get_threadsafe(Obj, static.ghid)
    assert again.state == b'static hello'
    expect_failure('updating a static object',
                   lambda: (setattr(static, 'state', b'x'),
                            static.push_threadsafe()))

    # Share both with B: B's share handler fires with A as the origin.
    dyn.share_threadsafe(link_b.whoami)
    static.share_threadsafe(link_b.whoami)
    wait_for('B is told of the dynamic share', lambda: shares_b.has(dyn.ghid))
    wait_for('B is told of the static share',
             lambda: shares_b.has(static.ghid))
    assert shares_b.origin_of(dyn.ghid) == link_a.whoami
    dyn_b = link_b.get_threadsafe(Obj, dyn.ghid)
    static_b = link_b.get_threadsafe(Obj, static.ghid)
    assert dyn_b.state == b'v0'
    assert static_b.state == b'static hello'
    assert dyn_b.binder == link_a.whoami

    # Updates reach B's callback, in order.
    updates_b = Updates()
    dyn_b.callback = updates_b.callback
    for i in range(1, 6):
        dyn.state = b'v%d' % i
        dyn.push_threadsafe()
    wait_for('B sees v5', lambda: updates_b.saw(b'v5'))
    assert dyn_b.state == b'v5'
    # B is not the author: its update is refused.
    expect_failure('an update by a non-author',
                   lambda: (setattr(dyn_b, 'state', b'evil'),
                            dyn_b.push_threadsafe()))
    dyn_b.state = b'v5'

    # Freeze: a static snapshot of the current state.
    frozen = dyn.freeze_threadsafe()
    assert not frozen.dynamic
    assert frozen.state == b'v5'
    assert frozen.ghid != dyn.ghid

    # Hold, then discard, on B's side.
    static_b.hold_threadsafe()
    static_b.discard_threadsafe()
    assert not static_b.isalive

    # Delete: B's copy dies when A deletes.
    doomed = link_a.new_threadsafe(Obj, state=b'short-lived', api_id=API)
    doomed.share_threadsafe(link_b.whoami)
    wait_for('B is told of the doomed share',
             lambda: shares_b.has(doomed.ghid))
    doomed_b = link_b.get_threadsafe(Obj, doomed.ghid)
    assert doomed_b.state == b'short-lived'
    doomed.delete_threadsafe()
    assert not doomed.isalive
    wait_for('B sees the delete', lambda: not doomed_b.isalive)

    # Private objects never cross tokens, even on the same agent.
    secret = link_a.new_threadsafe(Obj, state=b'private', api_id=API,
                                   private=True)
    assert secret.private
    other_app = HGXLink(ipc_port=port_a)
    other_app.register_token_threadsafe()
    assert other_app.token != link_a.token
    expect_failure('reading another token\'s private object',
                   lambda: other_app.get_threadsafe(Obj, secret.ghid))
    # A public object of the same agent is visible to the other app.
    assert other_app.get_threadsafe(Obj, dyn.ghid).state == b'v5'
    other_app.stop_threadsafe()

    # The startup object of A's app.
    link_a.register_startup_threadsafe(dyn)

    with open(state_file, 'w') as f:
        json.dump({
            'token_a': bytes(link_a.token).hex(),
            'token_b': bytes(link_b.token).hex(),
            'dyn': b64(dyn.ghid),
            'static': b64(static.ghid),
            'frozen': b64(frozen.ghid),
            'secret': b64(secret.ghid),
        }, f)
    link_a.stop_threadsafe()
    link_b.stop_threadsafe()
    log('first phase done')


def second(port_a, port_b, state_file):
    with open(state_file) as f:
        saved = json.load(f)
    link_a = HGXLink(ipc_port=port_a)
    link_b = HGXLink(ipc_port=port_b)
    token_a = AppToken(bytes.fromhex(saved['token_a']))
    startup = link_a.register_token_threadsafe(token_a)
    assert link_a.token == token_a
    assert startup == unb64(saved['dyn']), 'the startup object survived'
    link_b.register_token_threadsafe(AppToken(bytes.fromhex(saved['token_b'])))

    dyn = link_a.get_threadsafe(Obj, startup)
    assert dyn.state == b'v5', 'the acknowledged updates survived kill -9'
    assert link_a.get_threadsafe(Obj, unb64(saved['static'])).state == \
        b'static hello'
    assert link_a.get_threadsafe(Obj, unb64(saved['frozen'])).state == b'v5'
    # The same token still sees its private object.
    assert link_a.get_threadsafe(Obj, unb64(saved['secret'])).state == \
        b'private'

    dyn_b = link_b.get_threadsafe(Obj, startup)
    updates_b = Updates()
    dyn_b.callback = updates_b.callback
    dyn.state = b'after restart'
    dyn.push_threadsafe()
    wait_for('B sees the update after A restarted',
             lambda: updates_b.saw(b'after restart'))

    link_a.deregister_startup_threadsafe()
    link_a.stop_threadsafe()
    link_b.stop_threadsafe()
    log('second phase done')


if __name__ == '__main__':
    phase, port_a, port_b, state_file = sys.argv[1:5]
    {'first': first, 'second': second}[phase](
        int(port_a), int(port_b), state_file)
