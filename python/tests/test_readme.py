"""The usage block of python/README.md runs as written: its first half on
agent A, the friend's half (with the block's imports and api_id) on agent
B; only the port and the friend's identity are the test's."""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any, Dict

from conftest import REPO, Agents, wait_for
from hypergolix import HypergolixLink


def _usage_block() -> str:
    text = (REPO / "python/README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "python/README.md has no python block"
    return str(blocks[0])


def test_the_readme_usage_runs_as_written(agents: Agents) -> None:
    mine, friends = _usage_block().split("# On the friend's machine:\n")
    assert "ipc_port=7772" in mine
    # The imports and the api_id at the top are the friend's too.
    preamble = mine.split("\nlink = ", 1)[0]
    out = io.StringIO()

    # The friend (B) registers first, with the README's own handler; what
    # the handler and callbacks print (on the link's threads) is kept.
    friend_ns: Dict[str, Any] = {"link": HypergolixLink(agents.b.port)}
    friend_ns["link"].new_token_threadsafe()
    exec(compile(preamble, "README.md (friend)", "exec"), friend_ns)
    with contextlib.redirect_stdout(out):
        exec(compile(friends, "README.md (friend)", "exec"), friend_ns)
        friend = friend_ns["link"].whoami_threadsafe()
        ns: Dict[str, Any] = {"friend_identity": friend}
        code = mine.replace("ipc_port=7772", f"ipc_port={agents.a.port}")
        exec(compile(code, "README.md", "exec"), ns)
        wait_for("the friend's handler prints the share", lambda: "got b'hello" in out.getvalue())
        shared = friend_ns["link"].get_obj_threadsafe(ns["obj"].address)
        wait_for("the friend sees the update", lambda: shared.state == b"hello again")
    ns["link"].stop()
    friend_ns["link"].stop()
