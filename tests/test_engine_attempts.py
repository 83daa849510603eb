"""The method ladder's bounds (src/specs/engine/attempts.py): every attempt of every execution
method ends within its timeout, and ``total_timeout_seconds`` bounds the attempt running when it
runs out, not only the ones after it."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import specs

SPEC = """\
[meta]
goal_descriptor = "bounded"

[goal]
description = "Show that a hanging step ends on time"

[[tasks]]
id = 1
description = "Hang"

[[tasks.steps]]
id = 1
description = "A step that would never end"
expected_output = "nothing: it times out"
critical_flag = false
{keys}
"""

HANGS = """\
import asyncio


async def forever(ctx):
    await asyncio.sleep(3600)
"""


def run(tmp_path: Path, keys: str) -> tuple[specs.RunResult, float]:
    folder = tmp_path / "bounded"
    folder.mkdir()
    (folder / "parameters_bounded.toml").write_text(SPEC.format(keys=textwrap.dedent(keys)))
    (folder / "hangs.py").write_text(HANGS)
    began = time.monotonic()
    sys.path.insert(0, str(folder))
    try:
        result = specs.run_spec(folder, specs.RunOptions(state_dir=tmp_path / "state",
                                                         no_input=True))
    finally:
        sys.path.remove(str(folder))
    return result, time.monotonic() - began


def attempts(result: specs.RunResult) -> list[tuple[str, str | None]]:
    return [(a.outcome or "", a.failure_reason)
            for a in result.state.steps["1.1"].attempts]


def test_an_async_python_step_that_hangs_ends_at_its_timeout(tmp_path: Path) -> None:
    result, took = run(tmp_path, 'callable = "hangs:forever"\ntimeout_seconds = 0.5\n'
                                 "max_retries = 0")
    assert result.state.steps["1.1"].status == "failed"
    assert attempts(result) == [("failure", "timed out after 0.5 s")]
    assert took < 5, took


def test_total_timeout_bounds_the_attempt_that_is_running(tmp_path: Path) -> None:
    """No per-attempt timeout: the whole step's budget cuts the running command."""
    result, took = run(tmp_path, 'command = "sleep 30"\ntotal_timeout_seconds = 1')
    assert result.state.steps["1.1"].status == "failed"
    assert took < 10, took  # not 30 s
    first = result.state.steps["1.1"].attempts[0]
    assert first.failure_reason is not None and "timed out" in first.failure_reason


def test_a_timeout_longer_than_what_is_left_is_cut(tmp_path: Path) -> None:
    result, took = run(tmp_path, 'callable = "hangs:forever"\ntimeout_seconds = 60\n'
                                 "total_timeout_seconds = 0.5")
    assert result.state.steps["1.1"].status == "failed"
    assert took < 5, took


def test_the_backstop_is_short_for_what_is_not_a_process() -> None:
    from specs.engine import attempts

    assert attempts.BACKSTOP_S <= 0.5 < attempts.PROCESS_BACKSTOP_S
    assert asyncio.iscoroutinefunction(attempts.Ladder._attempt)
