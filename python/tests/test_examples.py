"""The two examples run as written: the dashboard on agent B prints the
readings the sensor on agent A publishes."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, Agents


def test_sensor_and_dashboard(agents: Agents, tmp_path) -> None:  # type: ignore[no-untyped-def]
    examples = REPO / "python/examples"
    dash = subprocess.Popen(
        [sys.executable, str(examples / "dashboard.py"), "--port", str(agents.b.port), "--count", "3"],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    assert dash.stdout is not None
    first = dash.stdout.readline()
    assert first.startswith("dashboard identity: "), first
    identity = first.split(": ", 1)[1].strip()
    sensor = subprocess.run(
        [sys.executable, str(examples / "sensor.py"), identity, "--port", str(agents.a.port),
         "--every", "0.2", "--count", "5"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert sensor.returncode == 0, sensor.stderr
    assert "publishing readings at" in sensor.stdout
    out, _ = dash.communicate(timeout=60)
    assert dash.returncode == 0
    assert "a sensor shared" in out
    assert out.count("load ") == 3, out
    assert (tmp_path / "sensor-token.bin").stat().st_size == 16
