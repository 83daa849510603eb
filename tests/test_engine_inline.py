"""Inline steps (:class:`specs.engine.inline.Inline`, run by the scheduler with no branch): a
plain python callable's step runs without a task of its own, and nothing a run records may
differ from the same step run as a task (the path every other step takes).

Each scenario runs twice on the same spec: as shipped (inline where allowed), and with the
python executor wrapped (``executors={"python": wrapper}``, which the inline path never
bypasses, so every step runs as a task). The events must match: globally in a sequential run,
step by step in a parallel one (there the interleaving of different steps may differ).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from specs import events as ev
from specs.engine.runner import Runner, RunOptions, RunResult
from specs.executors.base import Outcome, StepContext
from specs.executors.python import run_python
from specs.spec.load import load_spec
from specs.spec.model import Action
from test_engine_rules import SpecDir, brief, step

WHERE_PY = '''

import asyncio


def where(ctx):
    """Which asyncio task runs the step (the run's main task when it runs inline)."""
    with (HERE / "where.jsonl").open("a") as handle:
        task = asyncio.current_task()  # None in a callback (the scheduler's done callbacks)
        handle.write(json.dumps({"ref": ctx.ref, "task": task.get_name() if task else None})
                     + "\\n")
    return {"ran": ctx.ref}


def _on_disk(ctx):
    """Is this attempt's attempt-started in events.jsonl (written before the step acts)?"""
    run_dir = ctx.output_dir.parent.parent
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "attempt-started" and event["step"] == ctx.ref and \
                event["attempt"] == ctx.attempt:
            return {"seen": True}
    return {"seen": False}


def sees_itself(ctx):
    return _on_disk(ctx)


async def sees_itself_async(ctx):
    await asyncio.sleep(0)
    return _on_disk(ctx)


async def act_async(ctx):
    """``act`` behind an await: the same behaviours, from an ``async def``."""
    await asyncio.sleep(0)
    return act(ctx)


TICKS = [0]
SEEN: list[int] = []
DONE = [False]


async def ticker(ctx):
    """Counts the event loop's turns until the chain is done."""
    while not DONE[0] and TICKS[0] < 100000:
        TICKS[0] += 1
        await asyncio.sleep(0)
    return {"ticks": TICKS[0]}


def slow(ctx):
    """A plain function that holds the loop for 10 ms (twice the scheduler's inline slice)."""
    import time
    SEEN.append(TICKS[0])
    time.sleep(0.01)
    if ctx.step.id == 5:
        DONE[0] = True
    return {"seen": SEEN[-1]}


async def later(value):
    await asyncio.sleep(0)
    return value


def returns_awaitable(ctx):
    """A plain function whose result is a coroutine: the engine awaits it."""
    return later({"awaited": ctx.ref})
'''


async def as_task(action: Action, ctx: StepContext) -> Outcome:
    return await run_python(action, ctx)


def run(spec: SpecDir, *, inline: bool, **options: Any) -> tuple[RunResult, list[ev.Event],
                                                                  list[float]]:
    log: list[ev.Event] = []
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    runner = Runner(load_spec(spec.folder, project=False),
                    RunOptions(state_dir=spec.state_dir, no_input=True, fsync_interval=60,
                               **options),
                    subscribers=[lambda event, state: log.append(event)],
                    executors=None if inline else {"python": as_task},
                    sleep=fake_sleep, rng=random.Random(0))
    result = asyncio.run(runner.start())
    return result, log, sleeps


def detail(e: ev.Event) -> tuple[Any, ...]:
    """``brief`` plus what an attempt or a step ended with."""
    if isinstance(e, ev.AttemptEnded):
        return (*brief(e), e.failure_reason, e.transient, e.output_summary,
                json.dumps(e.output, sort_keys=True), e.escalate)
    if isinstance(e, ev.StepEnded):
        return (*brief(e), e.skip_reason, e.message, e.expected_output_match, e.resolved)
    if isinstance(e, ev.StepStarted):
        return (*brief(e), tuple(e.prior_step_dependencies), e.mode, e.critical)
    return brief(e)


SKIP = {"run-opened", "validation-summary", "mode-selected", "execution-planned"}


def flows(events: list[ev.Event], spec: SpecDir) -> tuple[list[Any], dict[str, list[Any]]]:
    """(the run's events in order, each step's own events in order), the spec's module name
    (in exception messages) replaced by ``MOD``."""

    def text(e: ev.Event) -> str:
        return json.dumps(detail(e)).replace(spec.module, "MOD")

    whole = [text(e) for e in events if e.name not in SKIP]
    per_step: dict[str, list[Any]] = collections.defaultdict(list)
    for e in events:
        ref = getattr(e, "step", None)
        if isinstance(ref, str) and e.name not in SKIP:
            per_step[ref].append(text(e))
    return whole, dict(per_step)


def make(tmp_path: Path, name: str, tasks: list[list[dict[str, Any]]], **keys: Any) -> SpecDir:
    root = tmp_path / name
    root.mkdir()
    spec = SpecDir(root, tasks, **keys)
    module = spec.folder / f"{spec.module}.py"
    module.write_text(module.read_text() + WHERE_PY)
    return spec


def where(spec: SpecDir) -> dict[str, str]:
    lines = (spec.folder / "where.jsonl").read_text().splitlines()
    return {r["ref"]: r["task"] for r in map(json.loads, lines)}


MIXED_PLAN = {
    "1.1:primary": ["ok"],
    "1.2:primary": ["transient", "ok"],          # retried after a backoff
    "1.3:primary": ["fail"], "1.3:backup_1": ["ok"],  # a backup takes over
    "1.4:primary": ["raise"],                     # an exception is a failed attempt
    "1.5:primary": ["partial"],                   # the function's own verdict
    "1.6:primary": [{"score": 0.5, "items": [1, 2]}],  # a structured output
    "1.7:primary": ["escalate:needs_review"],     # an executor-raised escalation trigger
    "1.14:primary": ["transient", "ok"],         # the same, from async functions
    "1.15:primary": ["fail"], "1.15:backup_1": ["ok"],
    "1.16:primary": ["raise"],
    "1.17:primary": [{"async": True}],
}


def mixed_steps() -> list[dict[str, Any]]:
    return [step(1), step(2, retries=1), step(3, backups=1), step(4), step(5), step(6),
            step(7),
            step(8, depends_on=[4]),                                  # upstream failed: skipped
            step(9, depends_on=[4], trigger_rule="all_done"),         # runs anyway
            step(10, depends_on=[1, 6], callable="@MOD@:where"),
            step(11, callable="@MOD@:returns_awaitable"),
            step(12, condition="IF step6_output.score < 0.8"),        # a condition: a task
            step(13, callable="@MOD@:act_async"),
            step(14, retries=1, callable="@MOD@:act_async"),
            step(15, backups=1, callable="@MOD@:act_async"),
            step(16, callable="@MOD@:act_async"),
            step(17, depends_on=[16], trigger_rule="one_failed", callable="@MOD@:act_async")]


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
@pytest.mark.parametrize("mode", ["silent", "dynamic"])
def test_inline_and_branch_paths_record_the_same_run(tmp_path: Path, parallel: bool,
                                                  mode: str) -> None:
    keys: dict[str, Any] = {"mode": mode, "plan": MIXED_PLAN,
                            "execution": {"escalation_triggers": ["needs_review"]}}
    if parallel:
        keys["execution"] = {**keys["execution"], "parallel_enabled": True,
                             "max_parallel_steps": 4}
    inline_spec = make(tmp_path, "inline", [mixed_steps()], **keys)
    task_spec = make(tmp_path, "tasks", [mixed_steps()], **keys)
    inline_result, inline_events, inline_sleeps = run(inline_spec, inline=True)
    task_result, task_events, task_sleeps = run(task_spec, inline=False)

    assert inline_result.exit_code == task_result.exit_code
    assert inline_sleeps == task_sleeps
    inline_whole, inline_steps = flows(inline_events, inline_spec)
    task_whole, task_steps = flows(task_events, task_spec)
    assert inline_steps == task_steps
    if not parallel:
        assert inline_whole == task_whole
    assert sorted(inline_whole) == sorted(task_whole)
    # the scenario covers what it says: each behaviour happened
    ended = {e.step: e for e in inline_events if isinstance(e, ev.StepEnded)}
    assert ended["1.3"].method_used == "backup_1"
    assert ended["1.8"].skip_reason == "upstream_failed"
    assert ended["1.9"].status == "completed"
    assert ended["1.12"].status == "completed"
    assert ended["1.15"].method_used == "backup_1"
    assert ended["1.16"].status == "failed"
    outputs = {e.step: e.output for e in inline_events if isinstance(e, ev.AttemptEnded)}
    assert outputs["1.11"] == {"awaited": "1.11"}
    assert outputs["1.17"] == {"async": True}
    assert inline_sleeps, "the transient failure was retried after a backoff"


def test_a_plain_callable_runs_inline_and_as_a_task_when_wrapped(tmp_path: Path) -> None:
    steps = [step(n, callable="@MOD@:where") for n in range(1, 6)]
    keys = {"execution": {"parallel_enabled": True, "max_parallel_steps": 4}}
    inline = make(tmp_path, "inline", [steps], **keys)
    tasks = make(tmp_path, "tasks", [steps], **keys)
    assert run(inline, inline=True)[0].exit_code == 0
    assert run(tasks, inline=False)[0].exit_code == 0
    assert len(set(where(inline).values())) == 1  # the run's own task: no task per step
    assert len(set(where(tasks).values())) == 5  # a task per step


def test_a_gate_before_the_step_keeps_it_off_the_inline_path(tmp_path: Path) -> None:
    spec = make(tmp_path, "gate", [[step(1, callable="@MOD@:where", mode="collaborative")]])
    result, events, _ = run(spec, inline=True)
    assert result.exit_code == 3  # the gate waits for a human, who is not here
    assert [e.name for e in events if e.name.startswith("gate")] == ["gate-requested"]
    assert not (spec.folder / "where.jsonl").exists()


@pytest.mark.parametrize("target", ["sees_itself", "sees_itself_async"])
def test_every_attempt_is_on_disk_before_its_step_acts(tmp_path: Path, target: str) -> None:
    """Inline steps and branches started together (whose attempt-started events share one
    write) alike: an attempt is recorded before the step does anything."""
    steps = [step(n, callable=f"@MOD@:{target}") for n in range(1, 9)]
    spec = make(tmp_path, target, [steps],
                execution={"parallel_enabled": True, "max_parallel_steps": 8})
    result, events, _ = run(spec, inline=True)
    assert result.exit_code == 0
    outputs = [e.output for e in events if isinstance(e, ev.AttemptEnded)]
    assert outputs == [{"seen": True}] * 8


def test_inline_steps_give_the_event_loop_a_turn(tmp_path: Path) -> None:
    """A chain of plain functions that each hold the loop for 10 ms: between two of them the
    loop runs (here: an async sibling counts its turns), so timers, signals and the live view
    are not starved by a long run of inline steps."""
    steps = [step(1, callable="@MOD@:ticker", depends_on=[])] + [
        step(n, callable="@MOD@:slow", depends_on=[n - 1] if n > 2 else []) for n in range(2, 6)]
    spec = make(tmp_path, "turns", [steps],
                execution={"parallel_enabled": True, "max_parallel_steps": 4})
    result, events, _ = run(spec, inline=True)
    assert result.exit_code == 0
    seen = [e.output["seen"] for e in events
            if isinstance(e, ev.AttemptEnded) and e.step != "1.1"]
    assert len(seen) == 4
    assert all(later > earlier for earlier, later in itertools.pairwise(seen)), seen


SLOW_STEPS_PY = '''
import pathlib
import time

HERE = pathlib.Path(__file__).parent


def slow(ctx):
    with (HERE / "ran.log").open("a") as handle:
        handle.write(ctx.ref + "\\n")
    time.sleep(0.01)
'''


@pytest.mark.parametrize("parallel", [False, True], ids=["chain", "fan-out"])
def test_ctrl_c_during_inline_steps_then_resume(tmp_path: Path, parallel: bool) -> None:
    """`specs run` of 300 plain-function steps (10 ms each, run inline) stopped by Ctrl-C:
    exit 130 without a traceback, and a resume runs only what had not completed."""
    import signal
    import textwrap

    from test_crash_safety import Background, check_log, ran, specs, wait_events_file, wait_for

    folder = tmp_path / "inline"
    folder.mkdir()
    (folder / "inline_steps.py").write_text(SLOW_STEPS_PY)
    steps = "".join(textwrap.dedent(f"""
        [[tasks.steps]]
        id = {n}
        description = "step {n}"
        expected_output = "done"
        critical_flag = false
        execution_method = "python"
        callable = "inline_steps:slow"
        """) for n in range(1, 301))
    (folder / "parameters_inline.toml").write_text(textwrap.dedent(f"""
        [meta]
        goal_descriptor = "inline"
        [goal]
        description = "Many inline steps"
        [execution]
        default_mode = "silent"
        parallel_enabled = {str(parallel).lower()}
        max_parallel_steps = 8
        [knowledge_capture]
        enabled = false
        [[tasks]]
        id = 1
        description = "task 1"
        """) + steps)
    state = tmp_path / "state"
    run = Background("run", folder, "--no-input", "--state-dir", state, cwd=tmp_path)
    path = wait_events_file(state, run)
    wait_for(path, lambda found: sum(e.name == "step-ended" for e in found) >= 20, run)
    os.kill(run.proc.pid, signal.SIGINT)
    code, _, err = run.finish()
    assert code == 130, err
    assert "Traceback" not in err
    before = check_log(path)
    end = before[-1]
    assert isinstance(end, ev.RunEnded) and end.status == "halted"
    done = {e.step for e in before if isinstance(e, ev.StepEnded) and e.status == "completed"}
    assert 20 <= len(done) < 300

    code, _, err = specs("resume", "last", "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 0, err
    counts = ran(folder)
    assert sorted(counts) == sorted(f"1.{n}" for n in range(1, 301))
    assert all(counts[ref] == 1 for ref in done), "a completed step ran again"
    assert all(count <= 2 for count in counts.values())  # at most the interrupted one again
