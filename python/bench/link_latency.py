"""The seed scenario through the Python link: agent A updates a dynamic
object shared with agent B; B's threadsafe callback sees each state.

    python python/bench/link_latency.py A_ADDR B_ADDR [UPDATES] [SHARES]

A_ADDR and B_ADDR are the services' `host:port`. Prints update → B's
callback latency (p50/p99, one update in flight at a time), closed-loop
updates/s (A's answers, B's callback awaited at the end), and share → B's
handler latency. Run by scripts/bench-service.sh; figures in
docs/benchmarks.md.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from typing import Dict, List

from hypergolix import ApiID, AppObj, HypergolixLink


def port(addr: str) -> int:
    return int(addr.rstrip("/").rsplit(":", 1)[1])


def pct(xs: List[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main() -> None:
    a_addr, b_addr = sys.argv[1], sys.argv[2]
    updates = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    shares = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    api = ApiID(os.urandom(64))
    a = HypergolixLink(port(a_addr))
    b = HypergolixLink(port(b_addr))
    a.new_token_threadsafe()
    b.new_token_threadsafe()
    b_id = b.whoami_threadsafe()

    arrived: Dict[bytes, float] = {}
    cond = threading.Condition()

    def on_update(obj: AppObj) -> None:
        with cond:
            arrived[obj.state] = time.perf_counter()
            cond.notify_all()

    got: Dict[bytes, float] = {}

    def on_share(obj: AppObj) -> None:
        with cond:
            got[bytes(obj.address)] = time.perf_counter()
            if obj.state == b"seed":
                obj.append_threadsafe_callback(on_update)
            cond.notify_all()

    def wait(pred) -> None:  # type: ignore[no-untyped-def]
        with cond:
            if not cond.wait_for(pred, 30):
                raise SystemExit("timed out")

    b.register_api_threadsafe(api, on_share)
    obj = a.new_obj_threadsafe(b"seed", api_id=api)
    obj.share_threadsafe(b_id)
    wait(lambda: bytes(obj.address) in got)

    lat: List[float] = []
    t_all = time.perf_counter()
    for i in range(updates):
        state = b"u%d" % i
        t0 = time.perf_counter()
        obj.update_threadsafe(state)
        wait(lambda: state in arrived)
        lat.append((arrived[state] - t0) * 1000)
    one_by_one = updates / (time.perf_counter() - t_all)
    print(f"python link: update -> other agent's callback, {updates} updates: "
          f"p50 {statistics.median(lat):.2f} ms, p99 {pct(lat, 99):.2f} ms; "
          f"{one_by_one:.0f} updates/s waiting for each callback")

    t0 = time.perf_counter()
    for i in range(updates):
        obj.update_threadsafe(b"c%d" % i)
    last = b"c%d" % (updates - 1)
    wait(lambda: last in arrived)
    took = time.perf_counter() - t0
    print(f"python link: pipelined by the answers, {updates} updates: {updates / took:.0f} updates/s "
          "(each update waits for A's answer, B's last callback at the end)")

    share_lat: List[float] = []
    for i in range(shares):
        o = a.new_obj_threadsafe(b"share %d" % i, api_id=api)
        t0 = time.perf_counter()
        o.share_threadsafe(b_id)
        wait(lambda: bytes(o.address) in got)
        share_lat.append((got[bytes(o.address)] - t0) * 1000)
    print(f"python link: share -> other agent's handler, {shares} shares: "
          f"p50 {statistics.median(share_lat):.2f} ms, p99 {pct(share_lat, 99):.2f} ms")
    a.stop()
    b.stop()


if __name__ == "__main__":
    main()
