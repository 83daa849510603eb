"""Specs and runs for the dashboard's tests: real runs made with the real CLI (a subprocess),
and the dashboard app called in-process (httpx.ASGITransport) or served on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from specs.dashboard import DashboardConfig, create_app

#: a step that prints HTML, a step whose primary fails and whose backup wins, and a step that
#: asks before it runs (mode collaborative)
DEMO = """\
[meta]
goal_descriptor = "{name}"

[goal]
description = "Show what the dashboard shows"

[execution]
default_mode = "silent"

[error_propagation]
propagation_strategy = "continue_and_log"

[[tasks]]
id = 1
description = "Build"

  [[tasks.steps]]
  id = 1
  description = "Print a script tag"
  expected_output = "some text"
  critical_flag = false
  command = "printf '<script>alert(1)</script>\\\\n'"

  [[tasks.steps]]
  id = 2
  description = "Fail first, then the backup works"
  expected_output = "backup ok"
  critical_flag = false
  max_retries = 0
  command = "echo primary tried; exit 3"

    [[tasks.steps.backups]]
    id = 1
    description = "The backup that works"
    command = "echo backup ok"

[[tasks]]
id = 2
description = "Ship"

  [[tasks.steps]]
  id = 1
  description = "Ship it once a human agrees"
  expected_output = "shipped"
  critical_flag = false
  mode = "collaborative"
  command = "echo shipped"
"""

#: steps that take a while and print a line at a time (the live tests)
SLOW = """\
[meta]
goal_descriptor = "{name}"

[goal]
description = "Run slowly enough to be watched"

[execution]
default_mode = "silent"

[error_propagation]
propagation_strategy = "continue_and_log"

[[tasks]]
id = 1
description = "Work"

  [[tasks.steps]]
  id = 1
  description = "Count slowly"
  expected_output = "five lines"
  critical_flag = false
  command = "for i in 1 2 3 4 5 6; do echo line $i; sleep {pause}; done"

  [[tasks.steps]]
  id = 2
  description = "Fail, then the backup"
  expected_output = "backup ok"
  critical_flag = false
  max_retries = 0
  command = "sleep {pause}; exit 4"

    [[tasks.steps.backups]]
    id = 1
    description = "The backup"
    command = "sleep {pause}; echo backup ok"

  [[tasks.steps]]
  id = 3
  description = "Ask first"
  expected_output = "done"
  critical_flag = false
  mode = "collaborative"
  command = "echo asked and done"

  [[tasks.steps]]
  id = 4
  description = "Finish"
  expected_output = "done"
  critical_flag = false
  command = "sleep {pause}; echo finished"
"""


def write(root: Path, name: str, text: str = DEMO, **values: object) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"parameters_{name}.toml").write_text(text.format(name=name, **values))
    return folder


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}


def specs_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "specs", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=60)


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``specs ARGS`` in the background (its own session, so it can be stopped whole)."""
    return subprocess.Popen([sys.executable, "-m", "specs", *args], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def client(state: Path, **settings: object) -> httpx.AsyncClient:
    """An in-process client of a dashboard of ``state``."""
    app = create_app(DashboardConfig(state_dir=state, **settings))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://127.0.0.1:8765")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(state: Path, port: int | None = None, **settings: object) -> Iterator[str]:
    """A real dashboard on 127.0.0.1 in a thread, for as long as the block runs: its URL."""
    from specs.dashboard.serve import DashboardServer

    config = DashboardConfig.make(state, port=port or free_port())
    for key, value in settings.items():
        setattr(config, key, value)
    server = DashboardServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
