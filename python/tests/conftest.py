"""Real processes for the link's tests: one `hypergolix serve` and two
local services (agents A and B, the engine in wasmtime) on loopback, each
in a temporary directory. `HYPERGOLIX_BIN` names the binary (default: the
release build of this repository)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]


def binary() -> str:
    exe = os.environ.get("HYPERGOLIX_BIN", str(REPO / "target/release/hypergolix"))
    if not Path(exe).is_file():
        pytest.fail(f"no hypergolix binary at {exe}: build it (cargo build --release) or set HYPERGOLIX_BIN")
    return exe


def _read_until_listening(proc: subprocess.Popen[str], what: str) -> str:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} exited before listening (rc {proc.wait()})")
        if line.startswith("listening on "):
            addr = line[len("listening on "):].strip()
            # Keep draining stdout so the process never blocks on a full pipe.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return addr


class Server:
    """`hypergolix serve` on an embedded store."""

    def __init__(self, store: Path) -> None:
        self.proc = subprocess.Popen(
            [binary(), "serve", "--listen", "127.0.0.1:0", "--store", str(store)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "warn"},
        )
        self.url = _read_until_listening(self.proc, "hypergolix serve")
        if not self.url.startswith("ws"):
            self.url = f"ws://{self.url}/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Service:
    """`hypergolix start` for one agent; `restart` keeps its data and port."""

    def __init__(self, data: Path, remote: str, ipc: str = "127.0.0.1:0") -> None:
        self.data = data
        self.remote = remote
        self.proc: Optional[subprocess.Popen[str]] = None
        self.addr = ""
        self._start(ipc)

    def _start(self, ipc: str) -> None:
        env = {
            **os.environ,
            "HYPERGOLIX_PASSWORD": "correct horse",
            "HYPERGOLIX_CACHE_DIR": str(self.data.parent / "cache"),
            "RUST_LOG": "warn",
        }
        self.proc = subprocess.Popen(
            [binary(), "start", "--ipc", ipc, "--insecure-test-kdf", "--data-dir",
             str(self.data), "--remote", self.remote],
            stdout=subprocess.PIPE, text=True, env=env,
        )
        self.addr = _read_until_listening(self.proc, "hypergolix start")

    @property
    def port(self) -> int:
        return int(self.addr.rstrip("/").rsplit(":", 1)[1])

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def restart(self) -> None:
        """Starts again on the same port after `kill9`."""
        self._start(f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Agents:
    """The server and the two agents' services."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = Server(root / "server.redb")
        self.a = Service(root / "a", self.server.url)
        self.b = Service(root / "b", self.server.url)

    def stop(self) -> None:
        for s in (self.a, self.b):
            s.stop()
        self.server.stop()


@pytest.fixture(scope="session")
def agents() -> Iterator[Agents]:
    root = Path(tempfile.mkdtemp(prefix="hgx-pylink-"))
    a = Agents(root)
    try:
        yield a
    finally:
        a.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 20.0) -> None:

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


__all__: List[str] = ["Agents", "wait_for"]
