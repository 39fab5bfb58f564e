"""Apps written for 0.1.0 run unchanged on this package: the scenario the
2017 link from PyPI runs in `wasi-host/tests/python_link.rs`
(`tests/python/hgxlink_scenario.py`, 0.1.0's API only: `HGXLink`, `Obj`,
`register_share_handler`, `push`, ...) runs here on our link, with agent
A's service killed with -9 between its two phases."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, Agents


def test_the_0_1_0_scenario_runs_on_this_package(agents: Agents, tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = REPO / "tests/python/hgxlink_scenario.py"
    assert script.is_file(), f"missing {script}"
    state = tmp_path / "state.json"

    def phase(name: str) -> None:
        subprocess.run(
            [sys.executable, str(script), name, str(agents.a.port), str(agents.b.port), str(state)],
            check=True, timeout=300,
        )

    phase("first")
    agents.a.kill9()
    agents.a.restart()
    phase("second")
