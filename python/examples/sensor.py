"""An IoT sensor: publishes a reading every few seconds into one dynamic
object and shares it with a dashboard's identity.

    python examples/sensor.py DASHBOARD_IDENTITY [--port 7772] [--every 2]

DASHBOARD_IDENTITY is what `hypergolix whoami` prints as "identity" on the
dashboard's machine. The object's address is printed once; the sensor keeps
its app token in `sensor-token.bin` so a restart updates the same object
(it is the token's startup object).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from hypergolix import ApiID, Ghid, HypergolixLink

#: The schema of readings: the dashboard registers the same api_id.
READINGS = ApiID(bytes(63) + b"\x42")
TOKEN_FILE = Path("sensor-token.bin")


def reading() -> bytes:
    load1, _, _ = os.getloadavg()
    return json.dumps({"time": time.time(), "load1": load1}).encode()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dashboard", help="the dashboard agent's identity")
    p.add_argument("--port", type=int, default=7772)
    p.add_argument("--every", type=float, default=2.0, help="seconds between readings")
    p.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    args = p.parse_args()
    dashboard = Ghid.from_str(args.dashboard)

    with HypergolixLink(ipc_port=args.port) as link:
        startup = None
        if TOKEN_FILE.exists():
            startup = link.set_token_threadsafe(TOKEN_FILE.read_bytes())
        else:
            TOKEN_FILE.write_bytes(link.new_token_threadsafe())
        if startup is not None:
            obj = link.get_obj_threadsafe(startup)
        else:
            obj = link.new_obj_threadsafe(reading(), api_id=READINGS)
            link.register_startup_threadsafe(obj)
            obj.share_threadsafe(dashboard)
        print("publishing readings at", obj.address.as_str(), flush=True)
        sent = 0
        while args.count == 0 or sent < args.count:
            obj.state = reading()  # encrypted, signed, pushed to the dashboard
            sent += 1
            time.sleep(args.every)


if __name__ == "__main__":
    main()
