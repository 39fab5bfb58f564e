"""Latency through the unmodified 0.1.0 Python link (the 2017 `hypergolix`
from PyPI, in the venv of `tests/python/venv.sh` with `py311-compat` on
PYTHONPATH), against two of our services:

    hgxlink_latency.py PORT_A PORT_B [UPDATES] [SHARES]

Prints update -> B's callback and share -> B's share handler latency
(p50/p99, one at a time), timed on this process's clock. Run by
scripts/bench-service.sh; figures in docs/benchmarks.md. Only the 0.1.0
API is used (HGXLink, Obj, push, share, register_share_handler).
"""
import os
import statistics
import sys
import threading
import time

from hypergolix import HGXLink
from hypergolix.objproxy import Obj
from hypergolix.utils import ApiID


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main():
    port_a, port_b = int(sys.argv[1]), int(sys.argv[2])
    updates = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    shares = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    api = ApiID(os.urandom(64))
    a = HGXLink(ipc_port=port_a)
    b = HGXLink(ipc_port=port_b)
    a.register_token_threadsafe()
    b.register_token_threadsafe()
    cond = threading.Condition()
    got = {}
    seen = {}

    async def on_share(ghid, origin, api_id):
        with cond:
            got[ghid] = time.perf_counter()
            cond.notify_all()

    async def on_update(obj):
        with cond:
            seen[bytes(obj.state)] = time.perf_counter()
            cond.notify_all()

    def wait(pred):
        with cond:
            if not cond.wait_for(pred, 30):
                raise SystemExit('timed out')

    b.register_share_handler_threadsafe(api, on_share)
    seed = a.new_threadsafe(Obj, state=b'seed', api_id=api)
    seed.share_threadsafe(b.whoami)
    wait(lambda: seed.ghid in got)
    seed_b = b.get_threadsafe(Obj, seed.ghid)
    seed_b.callback = on_update

    lat = []
    for i in range(updates):
        state = b'u%d' % i
        t0 = time.perf_counter()
        seed.state = state
        seed.push_threadsafe()
        wait(lambda: state in seen)
        lat.append((seen[state] - t0) * 1000)
    print(f'0.1.0 python link: update -> other agent\'s callback, {updates} updates: '
          f'p50 {statistics.median(lat):.2f} ms, p99 {pct(lat, 99):.2f} ms', flush=True)

    share_lat = []
    for i in range(shares):
        o = a.new_threadsafe(Obj, state=b'share %d' % i, api_id=api)
        t0 = time.perf_counter()
        o.share_threadsafe(b.whoami)
        wait(lambda: o.ghid in got)
        share_lat.append((got[o.ghid] - t0) * 1000)
    print(f'0.1.0 python link: share -> other agent\'s handler, {shares} shares: '
          f'p50 {statistics.median(share_lat):.2f} ms, p99 {pct(share_lat, 99):.2f} ms', flush=True)
    a.stop_threadsafe()
    b.stop_threadsafe()


if __name__ == '__main__':
    main()
