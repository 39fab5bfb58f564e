"""A dashboard on another agent: prints every sensor reading as it arrives.

    python examples/dashboard.py [--port 7772]

Prints this agent's identity first: give it to `sensor.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from hypergolix import ApiID, AppObj, HypergolixLink

READINGS = ApiID(bytes(63) + b"\x42")


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=7772)
    p.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    args = p.parse_args()
    link = HypergolixLink(ipc_port=args.port)
    print("dashboard identity:", (await link.whoami_async()).as_str(), flush=True)
    readings: "asyncio.Queue[bytes]" = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def on_update(obj: AppObj) -> None:
        # Runs on the link's loop: hand the state to ours.
        loop.call_soon_threadsafe(readings.put_nowait, obj.state)

    async def on_sensor(obj: AppObj) -> None:
        print("a sensor shared", obj.address.as_str(), "from", obj.author, flush=True)
        obj.append_async_callback(on_update)
        loop.call_soon_threadsafe(readings.put_nowait, obj.state)

    await link.register_api_async(READINGS, on_sensor)
    seen = 0
    try:
        while args.count == 0 or seen < args.count:
            r = json.loads(await readings.get())
            print(f"load {r['load1']:.2f} at {r['time']:.0f}", flush=True)
            seen += 1
    finally:
        link.stop()


if __name__ == "__main__":
    asyncio.run(main())
