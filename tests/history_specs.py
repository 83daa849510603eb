"""Small specs made of command steps that fail at seeded rates, run for real many times.

``flaky.sh`` (written into each spec folder) is a step's command (:func:`flaky`): it exits 0
with probability RATE and CODE (default 1) otherwise. The draw is seeded by the step's name and
n, the count of its calls (a counter file in the spec folder), so a history is the same every
time it is made on one machine; the tests count what happened from the runs' events, never
from the generator. Each :func:`run_spec` call is a real
engine run (:class:`specs.engine.runner.Runner`) recorded by the real history recorder.
"""

from __future__ import annotations

import asyncio
import hashlib
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.engine.runner import Runner, RunOptions, RunResult
from specs.history import recorder_for
from specs.spec.load import load_spec

FLAKY = textwrap.dedent("""\
    # sh flaky.sh NAME SEED RATE [CODE] [SLEEP_S]: exit 0 with probability RATE, else CODE
    c="$(dirname "$0")/counters/$1"
    mkdir -p "$(dirname "$c")"
    n=$(( $(cat "$c" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$c"
    [ -n "$5" ] && sleep "$5"
    awk -v seed="$2" -v n="$n" -v rate="$3" \\
        'BEGIN { srand(seed * 1000 + n); rand(); exit (rand() < rate ? 0 : 1) }' \\
        || exit "${4:-1}"
    """)


def flaky(name: str, rate: float, code: int = 1, sleep_s: float = 0) -> str:
    """The command of a step that succeeds with probability ``rate`` (draws seeded by the
    name and a call counter: awk's generator, a few ms a call)."""
    seed = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 100_000
    extra = f" {code}" + (f" {sleep_s:g}" if sleep_s else "")
    return f"sh flaky.sh {name} {seed} {rate:g}{extra}"


@dataclass
class B:
    """A backup: its command (and retries)."""

    command: str
    description: str = "another way"
    max_retries: int | None = None


@dataclass
class S:
    """A step: its command, critical flag, retries, backups and extra keys."""

    command: str
    critical: bool = False
    max_retries: int = 0
    backups: list[B] = field(default_factory=list)
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def write_spec(root: Path, name: str, tasks: list[tuple[str, list[S]]], *,
               extra_toml: str = "", strategy: str = "continue_and_log") -> Path:
    """A spec folder ``root/name`` with ``tasks`` [(description, steps)] and flaky.py."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flaky.sh").write_text(FLAKY)
    lines = ["# a spec made by the history tests", "[meta]", f'goal_descriptor = "{name}"', "",
             "[goal]", f'description = "Exercise the history with the {name} spec"', "",
             "[execution]", 'default_mode = "silent"', "", "[error_propagation]",
             f'propagation_strategy = "{strategy}"', ""]
    for t, (description, steps) in enumerate(tasks, start=1):
        lines += ["[[tasks]]", f"id = {t}", f"description = {_value(description)}", ""]
        for s, step in enumerate(steps, start=1):
            lines += ["  [[tasks.steps]]", f"  id = {s}",
                      f"  description = {_value(step.description or f'step {t}.{s}')}",
                      f'  expected_output = "the command of step {t}.{s} exits 0"',
                      f"  critical_flag = {_value(step.critical)}",
                      f"  max_retries = {step.max_retries}",
                      f"  command = {_value(step.command)}"]
            lines += [f"  {k} = {_value(v)}" for k, v in step.extra.items()]
            lines.append("")
            for b, backup in enumerate(step.backups, start=1):
                lines += ["    [[tasks.steps.backups]]", f"    id = {b}",
                          f"    description = {_value(backup.description)}",
                          f"    command = {_value(backup.command)}",
                          '    trigger_condition = "primary_failure"' if b == 1 else
                          f'    trigger_condition = "backup_{b - 1}_failure"']
                if backup.max_retries is not None:
                    lines.append(f"    max_retries = {backup.max_retries}")
                lines.append("")
    (folder / f"parameters_{name}.toml").write_text("\n".join(lines) + extra_toml)
    return folder


async def _no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


def run_spec(folder: Path, state_dir: Path, url: str | None, times: int = 1,
             **options: Any) -> list[RunResult]:
    """Run the spec ``times`` times, each recorded in the history at ``url``."""
    results = []
    for _ in range(times):
        loaded = load_spec(folder)
        recorder = recorder_for(state_dir, url, spec=loaded.spec)
        runner = Runner(loaded, RunOptions(state_dir=state_dir, yes=True, **options),
                        subscribers=[recorder], sleep=_no_sleep)
        try:
            results.append(asyncio.run(runner.start()))
        finally:
            recorder.close()
        assert recorder.error is None, recorder.error
    return results
