"""Benchmark: the parallel scheduler on the shared workloads W1-W4, against peers in the same run.

The workloads come from ``../shared/bench/gen_workloads.py`` (beside this repository), written
into a temporary folder as spec folders:

- W1 ``noop_chain``: 1,000 no-op steps, each depending on the previous one;
- W2 ``noop_fanout``: 1,000 independent no-op steps, then a join;
- W3 ``sleep_fanout``: 200 independent 50 ms sleeps, then a join (ideal makespan 50 ms);
- W4 ``diamond_layers``: 20 layers of 50 no-op steps, each on 2 random steps of the layer before.

Each workload runs, in this process and interleaved run by run (so a change of load hits every
system alike):

- ``specs``: ``load_spec`` once, then per run ``Runner(..., RunOptions(parallel=True,
  max_parallel=<the spec's max_parallel_steps>))`` with everything a user gets: events.jsonl
  (grouped fsync), the run state, ``ProgressWriter`` and ``NotepadWriter``;
- ``asyncio``: a bare asyncio loop: one task per node awaiting its dependencies' tasks, then the
  step (``noop()``, ``await asyncio.sleep(0.05)``, or ``/bin/sh -c CMD`` through
  ``asyncio.create_subprocess_exec``), at most ``max_parallel`` at once (a semaphore);
- ``dask``: Dask's threaded scheduler (``dask.threaded.get``) on a graph dict with the same
  dependencies; ``num_workers`` = the workload's width capped at ``max_parallel`` (W1 1,
  W2/W3 200, W4 50; Dask's own default would be the core count); a sleep is ``time.sleep(0.05)``
  in the worker thread, a command ``subprocess.run(["/bin/sh", "-c", CMD])``;
- ``prefect`` (when Prefect 3 is importable here, or ``--prefect-python`` names an interpreter
  that has it; it then runs in that child process, still in this run): a flow submitting one
  task per node with ``wait_for`` = its dependencies (``ThreadPoolTaskRunner`` with the same
  worker count as Dask, logging at WARNING, a temporary local API server started before
  timing). Prefect is slow, so it runs on W3 and on 100-step versions of W1, W2 and W4 (the
  same generator with ``--n 100``), in a separate table where every system runs those sizes.

Reported per workload and system: the median wall time over ``--runs`` runs (the whole run:
for specs, ``Runner.start()`` including pre-flight validation, not ``load_spec``), the median
makespan (first step started to last step ended), the per-step time (wall / steps),
makespan / ideal for W3 (ideal 0.05 s), and the ratios of wall time against the bare loop and
against Dask.

Usage:
  python bench/bench_parallel.py [--runs 5] [--action python|command|both] [--markdown]
                                 [--json results.json] [--prefect-python PATH] [--no-prefect]
  python bench/bench_parallel.py --profile w2     # cProfile one specs run: where time goes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_workloads.py"
WORKLOADS = ("w1", "w2", "w3", "w4")
SLEEP_S = 0.05
IDEAL = {"w3": SLEEP_S}
SMALL_N = 100  # W1, W2 and W4 for the table that includes Prefect
PREFECT_ENV = {"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
               "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}


# -- workloads ----------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    deps: tuple[int, ...]
    sleeps: bool  # a 50 ms step (W3), else a no-op
    command: str | None  # the command of a ``command`` step, None for a python step


@dataclass
class Workload:
    key: str  # w1..w4
    name: str  # the folder name, e.g. w1_noop_chain_python
    folder: Path
    action: str
    nodes: list[Node]
    max_parallel: int

    @property
    def steps(self) -> int:
        return len(self.nodes)

    @property
    def width(self) -> int:
        """The widest level of the DAG (level = 1 + the deepest dependency's level)."""
        level: list[int] = []
        for node in self.nodes:
            level.append(1 + max((level[d] for d in node.deps), default=-1))
        counts: dict[int, int] = {}
        for value in level:
            counts[value] = counts.get(value, 0) + 1
        return max(counts.values())

    @property
    def workers(self) -> int:
        return max(1, min(self.max_parallel, self.width))


def generate(out: Path, action: str, n: int | None = None) -> dict[str, Path]:
    """Run the shared generator; returns {w1..w4: spec folder}."""
    if not GENERATOR.is_file():
        sys.exit(f"the shared workload generator is missing: {GENERATOR}")
    argv = [sys.executable, str(GENERATOR), str(out), "--action", action]
    if n is not None:
        argv += ["--n", str(n)]
    printed = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()
    return {Path(p).name[:2]: Path(p) for p in printed}


def read_workload(key: str, folder: Path) -> Workload:
    """The DAG as the spec states it (parameters_*.toml), for the peers."""
    params = tomllib.loads(next(folder.glob("parameters_*.toml")).read_text())
    steps = params["tasks"][0]["steps"]
    index = {step["id"]: i for i, step in enumerate(steps)}
    nodes = []
    for step in steps:
        command = step.get("command")
        sleeps = (command or "").startswith("sleep") or \
            str(step.get("callable", "")).endswith(":sleep50")
        nodes.append(Node(step["description"].split(":")[0],
                          tuple(index[d] for d in step.get("depends_on", [])), sleeps, command))
    action = "command" if nodes[0].command else "python"
    return Workload(key, folder.name, folder, action, nodes,
                    int(params["execution"].get("max_parallel_steps", 200)))


# -- systems ------------------------------------------------------------------------------------


@dataclass
class Sample:
    wall: float
    makespan: float
    extra: dict[str, Any]
    phases: dict[str, float] | None = None  # specs: seconds spent per phase of the run


class StepClock:
    """An event subscriber noting when the run's phases begin: the first step-started, the last
    step-ended, and the run-level events around them."""

    MARKS = frozenset({"run-opened", "validation-summary", "execution-planned",
                       "completion-verified", "run-ended"})

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = self.burst_end = 0.0
        self.marks: dict[str, float] = {}

    def __call__(self, event: Any, state: Any) -> None:
        name = event.name
        if name == "step-started":
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            if not self.last:
                self.burst_end = now  # still in the first burst: no step has ended yet
        elif name == "step-ended":
            self.last = time.perf_counter()
        elif name in self.MARKS:
            self.marks[name] = time.perf_counter()

    def phases(self, start: float, end: float) -> dict[str, float]:
        m, first = self.marks, self.first or start
        return {  # the first eight add up to the wall time
            "open": m["run-opened"] - start,
            "preflight_validation": m["validation-summary"] - m["run-opened"],
            "mode_and_plan": m["execution-planned"] - m["validation-summary"],
            "plan_to_first_step": first - m["execution-planned"],
            "steps_makespan": self.last - first,
            "completion_check": m["completion-verified"] - self.last,
            "run_ended_writes": m["run-ended"] - m["completion-verified"],
            "close": end - m["run-ended"],
            # not a phase: the first to the last step-started before any step ended (W3: how
            # long launching the 200 sleeps takes; the makespan cannot be under 50 ms + this)
            "first_burst": self.burst_end - first,
        }


def specs_run(wl: Workload, loaded: Any, state_dir: Path, *, writers: bool = True) -> Sample:
    from specs.engine.runner import Runner, RunOptions
    from specs.record.notepad import NotepadWriter
    from specs.record.progress import ProgressWriter

    clock = StepClock()
    subscribers: list[Any] = []
    if writers:
        subscribers += [ProgressWriter(loaded.spec, loaded.progress_path),
                        NotepadWriter(loaded.spec, loaded.notepad_path,
                                      descriptor=loaded.descriptor)]
    subscribers.append(clock)
    runner = Runner(loaded, RunOptions(state_dir=state_dir, no_input=True, parallel=True,
                                       max_parallel=wl.max_parallel), subscribers=subscribers)
    gc.freeze()  # as `specs run` does before its run (src/specs/cli_run.py)
    start = time.perf_counter()
    result = asyncio.run(runner.start())
    end = time.perf_counter()
    assert result.goal == "ACHIEVED", (wl.name, result.status, result.state.end)
    assert clock.first is not None
    return Sample(end - start, clock.last - clock.first, {"events": runner.state.events},
                  clock.phases(start, end))


@contextlib.contextmanager
def records_off() -> Iterator[None]:
    """A diagnostic, not a mode specs has: what the engine costs without writing its records.

    While it is on, the event log neither encodes nor writes (``EventLog.append``, ``flush``
    and ``sync_soon`` do nothing) and a spec's pre-flight validation is computed once and
    reused; run with ``writers=False`` (no progress document, no notepad). What is left is the
    engine itself: the plan, the scheduler, the run state fed by the events (built as objects
    and applied), the step logic and the executors. Used for the ``specs-no-records`` rows
    (``--records-off``)."""
    from specs import events
    from specs.spec import validate as validation

    saved = (events.EventLog.append, events.EventLog.flush, events.EventLog.sync_soon,
             validation.validate)

    def validate_once(loaded: Any, *args: Any, **kwargs: Any) -> Any:
        if id(loaded) not in _VALIDATED:  # (the loaded spec is kept: its id stays its own)
            _VALIDATED[id(loaded)] = (loaded, saved[3](loaded, *args, **kwargs))
        return list(_VALIDATED[id(loaded)][1])

    events.EventLog.append = lambda self, event, *, flush=True: None  # type: ignore[method-assign]
    events.EventLog.flush = lambda self: None  # type: ignore[method-assign]
    events.EventLog.sync_soon = lambda self: None  # type: ignore[method-assign]
    validation.validate = validate_once
    try:
        yield
    finally:
        (events.EventLog.append, events.EventLog.flush, events.EventLog.sync_soon,
         validation.validate) = saved


_VALIDATED: dict[int, tuple[Any, Any]] = {}  # records_off(): id(loaded) -> (loaded, result)


def specs_run_no_records(wl: Workload, loaded: Any, state_dir: Path) -> Sample:
    with records_off():
        return specs_run(wl, loaded, state_dir, writers=False)


async def _bare(wl: Workload) -> tuple[float, float]:
    semaphore = asyncio.Semaphore(wl.max_parallel)
    starts: list[float] = []
    ends: list[float] = []

    def noop() -> int:
        return 1

    async def node(n: Node, deps: list[asyncio.Task[None]]) -> None:
        for dep in deps:
            await dep
        async with semaphore:
            starts.append(time.perf_counter())
            if n.command is not None:
                proc = await asyncio.create_subprocess_exec(
                    "/bin/sh", "-c", n.command, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, start_new_session=True)
                await proc.communicate()
                assert proc.returncode == 0
            elif n.sleeps:
                await asyncio.sleep(SLEEP_S)
            else:
                noop()
            ends.append(time.perf_counter())

    tasks: list[asyncio.Task[None]] = []
    for n in wl.nodes:
        tasks.append(asyncio.create_task(node(n, [tasks[d] for d in n.deps])))
    await asyncio.gather(*tasks)
    return min(starts), max(ends)


def bare_run(wl: Workload) -> Sample:
    start = time.perf_counter()
    first, last = asyncio.run(_bare(wl))
    return Sample(time.perf_counter() - start, last - first, {})


def _step_function(n: Node, starts: list[float], ends: list[float]) -> Callable[..., int]:
    """A synchronous step for thread-based peers (Dask, Prefect)."""

    def step(*_deps: Any) -> int:
        starts.append(time.perf_counter())
        if n.command is not None:
            subprocess.run(["/bin/sh", "-c", n.command], check=True, capture_output=True)
        elif n.sleeps:
            time.sleep(SLEEP_S)
        ends.append(time.perf_counter())
        return 1

    return step


def dask_run(wl: Workload) -> Sample:
    import dask.threaded

    starts: list[float] = []
    ends: list[float] = []
    graph: dict[str, Any] = {}
    for n in wl.nodes:
        graph[n.name] = (_step_function(n, starts, ends), *(wl.nodes[d].name for d in n.deps))
    keys = [n.name for n in wl.nodes]
    start = time.perf_counter()
    dask.threaded.get(graph, keys, num_workers=wl.workers)
    wall = time.perf_counter() - start
    return Sample(wall, max(ends) - min(starts), {"num_workers": wl.workers})


def prefect_run(wl: Workload) -> Sample:
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.futures import wait
    from prefect.task_runners import ThreadPoolTaskRunner

    starts: list[float] = []
    ends: list[float] = []

    functions = [_step_function(n, starts, ends) for n in wl.nodes]

    @task(name="step", cache_policy=NO_CACHE, persist_result=False)
    def step(i: int) -> int:
        return functions[i]()

    @flow(name=f"bench_{wl.key}", task_runner=ThreadPoolTaskRunner(max_workers=wl.workers),
          persist_result=False)
    def run_flow() -> None:
        futures: list[Any] = []
        for i, n in enumerate(wl.nodes):
            futures.append(step.submit(i, wait_for=[futures[d] for d in n.deps]))
        wait(futures)
        for future in futures:
            future.result()

    start = time.perf_counter()
    run_flow()
    wall = time.perf_counter() - start
    return Sample(wall, max(ends) - min(starts), {"max_workers": wl.workers})


def prefect_warmup() -> None:
    """Start Prefect's temporary API server (and its database) outside the timings."""
    from prefect import flow

    @flow(name="bench_warmup")
    def warm() -> int:
        return 1

    warm()


# -- measuring ----------------------------------------------------------------------------------


def summarise(wl: Workload, system: str, samples: list[Sample]) -> dict[str, Any]:
    wall = statistics.median(s.wall for s in samples)
    makespan = statistics.median(s.makespan for s in samples)
    out: dict[str, Any] = {
        "workload": wl.key, "spec": wl.name, "action": wl.action, "steps": wl.steps,
        "system": system, "runs": len(samples),
        "wall_median_s": round(wall, 4), "makespan_median_s": round(makespan, 4),
        "wall_per_step_us": round(wall / wl.steps * 1e6, 1),
        "makespan_per_step_us": round(makespan / wl.steps * 1e6, 1),
        "wall_all_s": [round(s.wall, 4) for s in samples],
    }
    if wl.key in IDEAL:
        out["ideal_s"] = IDEAL[wl.key]
        out["makespan_over_ideal"] = round(makespan / IDEAL[wl.key], 2)
    for key, value in samples[-1].extra.items():
        out[key] = value
    if samples[0].phases:
        out["phases_median_ms"] = {
            key: round(statistics.median(s.phases[key] for s in samples if s.phases) * 1e3, 1)
            for key in samples[0].phases}
    return out


def add_ratios(rows: list[dict[str, Any]]) -> None:
    by = {(r["spec"], r["system"]): r for r in rows}
    for row in rows:
        for peer in ("asyncio", "dask"):
            other = by.get((row["spec"], peer))
            if other and other["wall_median_s"]:
                row[f"wall_vs_{peer}"] = round(row["wall_median_s"] / other["wall_median_s"], 2)
                row[f"makespan_vs_{peer}"] = round(
                    row["makespan_median_s"] / other["makespan_median_s"], 2)


def measure(workloads: list[Workload], runs: int, warmup: int, root: Path, *,
            with_dask: bool, no_records: bool = False) -> list[dict[str, Any]]:
    from specs.spec.load import load_spec

    rows: list[dict[str, Any]] = []
    for wl in workloads:
        loaded = load_spec(wl.folder)
        assert loaded.spec is not None
        systems: dict[str, Callable[[int], Sample]] = {
            "specs": lambda i, wl=wl, loaded=loaded: specs_run(
                wl, loaded, root / f"state_{wl.name}_{i}"),
            "asyncio": lambda i, wl=wl: bare_run(wl),
        }
        if no_records:
            systems["specs-no-records"] = lambda i, wl=wl, loaded=loaded: \
                specs_run_no_records(wl, loaded, root / f"state_{wl.name}_bare_{i}")
        if with_dask:
            systems["dask"] = lambda i, wl=wl: dask_run(wl)
        samples: dict[str, list[Sample]] = {name: [] for name in systems}
        for i in range(warmup + runs):
            for name, run in systems.items():
                gc.collect()
                sample = run(i)
                if i >= warmup:
                    samples[name].append(sample)
        for name, got in samples.items():
            rows.append(summarise(wl, name, got))
        print(f"  measured {wl.name}", file=sys.stderr)
    add_ratios(rows)
    return rows


class PrefectPeer:
    """Prefect, in this process when importable, else in a child interpreter that has it."""

    def __init__(self, python: str | None) -> None:
        self.python = python
        self.version = ""
        self.note = ""

    @classmethod
    def find(cls, python: str | None) -> PrefectPeer | None:
        if python:
            probe = subprocess.run([python, "-c", "import prefect; print(prefect.__version__)"],
                                   capture_output=True, text=True)
            if probe.returncode != 0:
                print(f"prefect is not importable by {python}: skipped", file=sys.stderr)
                return None
            peer = cls(python)
            peer.version = probe.stdout.strip()
            peer.note = f"child interpreter {python}"
            return peer
        try:
            for key, value in PREFECT_ENV.items():
                os.environ.setdefault(key, value)
            import prefect
        except ImportError:
            return None
        peer = cls(None)
        peer.version = prefect.__version__
        peer.note = "in process"
        return peer

    def run(self, workloads: list[Workload], runs: int, warmup: int) -> list[dict[str, Any]]:
        """Every workload on Prefect, one after the other (after the other systems)."""
        jobs = [{"key": wl.key, "folder": str(wl.folder)} for wl in workloads]
        if self.python is None:
            return prefect_jobs(jobs, runs, warmup)
        env = {**os.environ, **PREFECT_ENV}
        env.setdefault("PREFECT_HOME", str(Path(tempfile.gettempdir()) / "specs-bench-prefect"))
        job = json.dumps({"jobs": jobs, "runs": runs, "warmup": warmup})
        done = subprocess.run([self.python, __file__, "--prefect-child", job], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the prefect child failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def prefect_jobs(jobs: list[dict[str, str]], runs: int, warmup: int) -> list[dict[str, Any]]:
    for key, value in PREFECT_ENV.items():
        os.environ.setdefault(key, value)
    prefect_warmup()
    rows = []
    for job in jobs:
        wl = read_workload(job["key"], Path(job["folder"]))
        samples = []
        for i in range(warmup + runs):
            gc.collect()
            sample = prefect_run(wl)
            if i >= warmup:
                samples.append(sample)
        rows.append(summarise(wl, "prefect", samples))
        print(f"  measured {wl.name} on prefect", file=sys.stderr)
    return rows


def prefect_child(job_text: str) -> None:
    """``--prefect-child JOB``: run the workloads on Prefect here; print the rows as JSON."""
    job = json.loads(job_text)
    print(json.dumps(prefect_jobs(job["jobs"], job["runs"], job["warmup"])))


# -- profiling ----------------------------------------------------------------------------------

#: (category, test on "file:function"): the first match takes a function's self time; the self
#: time of anything else (builtins, the standard library, generated ``__init__``) goes to its
#: callers' categories, in proportion to the time spent under each caller
CATEGORIES: list[tuple[str, Callable[[str], bool]]] = [
    ("event log: encode + write + fsync (EventLog)",
     lambda f: "specs/events.py:" in f and any(k in f for k in (
         ":append", ":flush", ":sync", ":_write_buffer", ":_encode"))),
    ("event objects: build + to_dict + timestamps", lambda f: "specs/events.py:" in f),
    ("state projection (RunState.apply)", lambda f: "specs/engine/state.py:" in f),
    ("progress writer (document + atomic write)",
     lambda f: "specs/record/" in f and "notepad.py" not in f),
    ("notepad writer", lambda f: "specs/record/notepad.py:" in f),
    ("scheduler bookkeeping", lambda f: "specs/engine/scheduler.py:" in f
     or "specs/plan/" in f),
    ("executor + the step's function", lambda f: "specs/executors/" in f
     or "bench_steps.py:" in f),
    ("runner: per-step logic (emit, trigger rule, ladder, checks, policy, escalation)",
     lambda f: "specs/engine/" in f),
    ("pre-flight validation", lambda f: "specs/spec/validate/" in f
     or "specs/diagnostics.py:" in f or "/jsonschema/" in f),
    ("other specs code", lambda f: "/specs/" in f),
    ("benchmark harness (StepClock)", lambda f: "bench_parallel.py:" in f),
    ("asyncio event loop + tasks", lambda f: "/asyncio/" in f or "selectors.py:" in f),
]


def categorise(stats: Any) -> dict[str, float]:
    """Self time per category (see CATEGORIES)."""
    table = stats.stats
    direct: dict[Any, str | None] = {}
    for key in table:
        where = f"{key[0]}:{key[2]}"
        direct[key] = next((c for c, test in CATEGORIES if test(where)), None)
    totals: dict[str, float] = {}

    def give(key: Any, amount: float, depth: int, seen: frozenset[Any]) -> None:
        name = direct.get(key)
        if name is not None:
            totals[name] = totals.get(name, 0.0) + amount
            return
        callers = table[key][4] if key in table else {}
        weights = {c: edge[3] for c, edge in callers.items() if c not in seen}
        whole = sum(weights.values())
        if depth > 12 or not whole:
            label = "interpreter + unattributed"
            totals[label] = totals.get(label, 0.0) + amount
            return
        for caller, weight in weights.items():
            give(caller, amount * weight / whole, depth + 1, seen | {key})

    for key, (_cc, _nc, tottime, _ct, _callers) in table.items():
        give(key, tottime, 0, frozenset())
    return totals


def cumulative(stats: Any, targets: dict[str, str]) -> dict[str, float]:
    """Inclusive time of named functions (``file suffix:function``)."""
    found: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, _tt, cumtime, _callers) in stats.stats.items():
        for label, target in targets.items():
            suffix, _, func = target.partition(":")
            if filename.endswith(suffix) and function == func:
                found[label] = found.get(label, 0.0) + cumtime
    return found


def profile(key: str, root: Path, top: int, action: str = "python") -> dict[str, Any]:
    import cProfile
    import pstats

    from specs.spec.load import load_spec

    wl = read_workload(key, generate(root / "wl", action)[key])
    loaded = load_spec(wl.folder)
    specs_run(wl, loaded, root / "warm")  # imports and caches, outside the profile
    plain = statistics.median(specs_run(wl, loaded, root / f"p{i}").wall for i in range(3))
    events_only = statistics.median(
        specs_run(wl, loaded, root / f"e{i}", writers=False).wall for i in range(3))
    profiler = cProfile.Profile()
    profiler.enable()
    sample = specs_run(wl, loaded, root / "profiled")
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    per_step = 1e6 / wl.steps
    cats = sorted(categorise(stats).items(), key=lambda kv: -kv[1])
    inclusive = cumulative(stats, {
        "Runner.emit (all events, inclusive)": "runner.py:emit",
        "  RunState.apply": "state.py:apply",
        "  EventLog.append": "events.py:append",
        "  ProgressWriter.__call__": "progress.py:__call__",
        "  NotepadWriter.__call__": "notepad.py:__call__",
        "Event.to_dict": "events.py:to_dict",
        "events.iso (timestamps)": "events.py:iso",
        "Runner._step (inclusive)": "runner.py:_step",
        "  Runner._before_step": "runner.py:_before_step",
        "  Runner._ladder": "runner.py:_ladder",
        "  Runner._escalations": "runner.py:_escalations",
        "  Runner._context": "runner.py:_context",
        "  run_python": "python.py:run_python",
        "  run_command": "command.py:run_command",
        "Scheduler._launch_ready": "scheduler.py:_launch_ready",
        "Scheduler._finished": "scheduler.py:_finished",
        "Runner.preflight (validation)": "runner.py:preflight",
        "ProgressWriter._write": "progress.py:_write",
        "NotepadWriter._write": "notepad.py:_write",
    })
    rows = sorted(((f"{Path(f).name}:{fn}", tt, ct, nc) for (f, _l, fn), (_c, nc, tt, ct, _)
                   in stats.stats.items()), key=lambda r: -r[1])[:top]  # type: ignore[attr-defined]
    return {
        "workload": wl.name, "steps": wl.steps, "events": sample.extra["events"],
        "wall_median_s_unprofiled": round(plain, 4),
        "wall_median_s_without_progress_notepad": round(events_only, 4),
        "wall_profiled_s": round(sample.wall, 4),
        "profiled_self_time_s": round(total, 4),
        "categories_us_per_step": {k: round(v * per_step, 1) for k, v in cats},
        "categories_share": {k: round(v / total, 3) for k, v in cats},
        "inclusive_us_per_step": {k: round(v * per_step, 1) for k, v in inclusive.items()},
        "top_self_time": [{"function": f, "self_us_per_step": round(tt * per_step, 1),
                           "incl_us_per_step": round(ct * per_step, 1), "calls": nc}
                          for f, tt, ct, nc in rows],
    }


# -- output -------------------------------------------------------------------------------------

LABEL = {"w1": "W1 chain", "w2": "W2 fan-out", "w3": "W3 sleep fan-out", "w4": "W4 diamonds"}


def markdown(rows: list[dict[str, Any]], title: str) -> str:
    lines = [f"#### {title}", "",
             "| workload | steps | system | workers | wall (ms) | makespan (ms) | per step (µs) "
             "| makespan / ideal | wall vs asyncio | wall vs Dask |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        workers = r.get("num_workers") or r.get("max_workers") or \
            ("200 (limit)" if r["system"] in ("specs", "specs-no-records", "asyncio") else "")
        ideal = f"{r['makespan_over_ideal']:.2f}" if "makespan_over_ideal" in r else "–"
        lines.append(
            f"| {LABEL[r['workload']]} | {r['steps']} | {r['system']} | {workers} "
            f"| {r['wall_median_s'] * 1e3:.1f} | {r['makespan_median_s'] * 1e3:.1f} "
            f"| {r['wall_per_step_us']:.0f} | {ideal} "
            f"| {r.get('wall_vs_asyncio', '–')} | {r.get('wall_vs_dask', '–')} |")
    return "\n".join(lines)


def cpu_pressure() -> str | None:
    """Linux PSI: the share of time runnable tasks waited for a CPU (other load), if known."""
    with contextlib.suppress(OSError):
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    return None


def environment() -> dict[str, Any]:
    import specs

    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                            "platform": platform.platform(), "specs": specs.__version__,
                            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                            "cpu_pressure_start": cpu_pressure()}
    with contextlib.suppress(ImportError):
        import dask

        info["dask"] = dask.__version__
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--action", choices=["python", "command", "both"], default="both")
    parser.add_argument("--workloads", default="w1,w2,w3,w4", help="e.g. w2,w3")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--json", type=Path, help="also write the JSON document here")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--no-prefect", action="store_true")
    parser.add_argument("--prefect-python", help="an interpreter with Prefect 3 installed")
    parser.add_argument("--profile", metavar="W",
                        help="cProfile one specs run of W (python steps, or --action command)")
    parser.add_argument("--top", type=int, default=25, help="--profile: functions to list")
    parser.add_argument("--records-off", action="store_true",
                        help="also measure specs without writing its records (a diagnostic "
                             "row, specs-no-records: no event log writes, no progress "
                             "document or notepad, validation computed once)")
    parser.add_argument("--prefect-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prefect_child:
        prefect_child(args.prefect_child)
        return
    with tempfile.TemporaryDirectory(prefix="specs-bench-") as tmp:
        root = Path(tmp)
        if args.profile:
            action = "command" if args.action == "command" else "python"
            print(json.dumps(profile(args.profile.lower(), root, args.top, action), indent=2))
            return
        chosen = [w.strip().lower() for w in args.workloads.split(",") if w.strip()]
        with_dask = not args.no_dask
        if with_dask:
            try:
                import dask.threaded  # noqa: F401
            except ImportError:
                print("dask is not installed (pip install -e '.[bench]'): skipped",
                      file=sys.stderr)
                with_dask = False
        doc: dict[str, Any] = {"environment": environment(), "runs": args.runs,
                               "warmup": args.warmup, "tables": {}}
        actions = ["python", "command"] if args.action == "both" else [args.action]
        for action in actions:
            print(f"{action} workloads:", file=sys.stderr)
            folders = generate(root / action, action)
            workloads = [read_workload(k, folders[k]) for k in chosen]
            doc["tables"][action] = measure(workloads, args.runs, args.warmup, root,
                                            with_dask=with_dask, no_records=args.records_off)
        prefect = None if args.no_prefect else PrefectPeer.find(args.prefect_python)
        if prefect is not None:
            print(f"prefect {prefect.version} ({prefect.note}), small workloads:",
                  file=sys.stderr)
            folders = generate(root / "small", "python", SMALL_N)
            workloads = [read_workload(k, folders[k]) for k in chosen]
            rows = measure(workloads, args.runs, args.warmup, root, with_dask=with_dask)
            rows += prefect.run(workloads, args.runs, args.warmup)
            rows.sort(key=lambda r: r["workload"])  # stable: each workload's systems together
            add_ratios(rows)
            doc["tables"]["python_small_with_prefect"] = rows
            doc["environment"]["prefect"] = f"{prefect.version} ({prefect.note})"
        else:
            doc["environment"]["prefect"] = "not run"
        doc["environment"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        doc["environment"]["cpu_pressure_end"] = cpu_pressure()
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if not args.markdown:
        print(json.dumps(doc, indent=2))
        return
    titles = {"python": "Python steps (`--action python`, in process)",
              "command": "Command steps (`--action command`, one `/bin/sh -c` per step)",
              "python_small_with_prefect":
                  f"With Prefect {doc['environment']['prefect']}: W1, W2, W4 at "
                  f"{SMALL_N} steps, W3 at 200 (python steps)"}
    env = doc["environment"]
    print(f"<!-- bench_parallel.py --runs {args.runs}: Python {env['python']}, {env['cpus']} "
          f"CPUs, load average {env['loadavg_start'][0]} -> {env['loadavg_end'][0]} -->\n")
    for name, rows in doc["tables"].items():
        print(markdown(rows, titles[name]) + "\n")


if __name__ == "__main__":
    main()
