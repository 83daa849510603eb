"""The watchdog (specs.executors.watchdog): a step's whole process group, and a process it
started in a session of its own, end when the engine is killed with ``kill -9``: a real
``specs run`` in a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")

SPEC = """\
[meta]
goal_descriptor = "long"

[goal]
description = "Wait"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Wait"

[[tasks.steps]]
id = 1
description = "Wait, with a child in the background and one in a session of its own"
command = '''
setsid sleep 121 & echo $! > {setsid_file}
echo $$ > {pgid_file}; sleep 120 & sleep 120; wait'''
"""


def group_alive(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that are not zombies."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def wait_until(condition: Callable[[], object], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_kill_9_of_the_engine_ends_the_steps_process_group(tmp_path: Path) -> None:
    pgid_file, setsid_file = tmp_path / "pgid", tmp_path / "setsid"
    folder = tmp_path / "long"
    folder.mkdir()
    (folder / "parameters_long.toml").write_text(
        SPEC.format(pgid_file=pgid_file, setsid_file=setsid_file), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    engine = subprocess.Popen([sys.executable, "-m", "specs", "run", str(folder), "--no-input",
                               "--state-dir", str(tmp_path / "state")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pgid = loner = 0
    try:
        assert wait_until(lambda: pgid_file.is_file() and pgid_file.read_text().strip(), 60), \
            engine.stderr.read() if engine.poll() is not None and engine.stderr else "no step"
        pgid, loner = int(pgid_file.read_text()), int(setsid_file.read_text())
        assert wait_until(lambda: len(group_alive(pgid)) >= 3, 10)  # sh and two sleeps
        assert group_alive(loner) == [loner]  # it left the step's group
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
        assert wait_until(lambda: not group_alive(pgid) and not group_alive(loner), 2.0), (
            group_alive(pgid), group_alive(loner))
    finally:
        if engine.poll() is None:
            engine.kill()
        for group in (pgid, loner):
            if group:
                with contextlib.suppress(OSError):
                    os.killpg(group, signal.SIGKILL)
        if engine.stderr:
            engine.stderr.close()
