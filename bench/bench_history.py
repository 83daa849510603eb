"""Benchmark: what the run history costs, and how fast ``specs insights`` answers.

1. **Recording cost.** The shared workloads (``../shared/bench/gen_workloads.py``; W2
   ``noop_fanout`` by default: 1,000 independent no-op steps and a join) run in this process,
   interleaved run by run, as ``specs`` (events.jsonl, the run state, ``ProgressWriter`` and
   ``NotepadWriter``: what bench_parallel.py measures) and as ``specs+history`` (the same plus
   :func:`specs.history.recorder_for` on SQLite in the state folder; the time includes making
   the recorder and ``close()``, which returns once every row is committed). Reported: median
   wall times, their ratio, the added time per step, and the process's CPU time (all threads)
   with its ratio, which a loaded machine disturbs less.
2. **Insights on a big history** (``--insights``): a spec of 50 python steps failing at seeded
   rates (some with backups) is run by the engine itself ``--history-runs`` times (1,000 by
   default) with the history recorder on; then ``insights.analyse`` (what ``specs insights
   PATH --json`` does, without the process start) is timed over that history, median of
   ``--runs``, with the default window (the newest 100 runs count; every run is still read)
   and with a window of every run. The history is kept in ``--cache DIR`` to be reused.

Targets (issue 14): the history adds under 10 % to W2's wall time; insights answers in under
2 s on 1,000 runs x 50 steps.

Usage:
  python bench/bench_history.py [--runs 7] [--workloads w2] [--action python|command]
                                [--insights] [--history-runs 1000] [--cache DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_workloads.py"


def generate(out: Path, action: str) -> dict[str, Path]:
    if not GENERATOR.is_file():
        sys.exit(f"the shared workload generator is missing: {GENERATOR}")
    printed = subprocess.run([sys.executable, str(GENERATOR), str(out), "--action", action],
                             check=True, capture_output=True, text=True).stdout.split()
    return {Path(p).name[:2]: Path(p) for p in printed}


def one_run(loaded: Any, state_dir: Path, history: bool) -> tuple[float, float]:
    from specs.engine.runner import Runner, RunOptions
    from specs.history import recorder_for
    from specs.record.notepad import NotepadWriter
    from specs.record.progress import ProgressWriter

    gc.freeze()
    start, cpu = time.perf_counter(), time.process_time()
    subscribers: list[Any] = [ProgressWriter(loaded.spec, loaded.progress_path),
                              NotepadWriter(loaded.spec, loaded.notepad_path,
                                            descriptor=loaded.descriptor)]
    recorder = recorder_for(state_dir, spec=loaded.spec) if history else None
    if recorder is not None:
        subscribers.append(recorder)
    runner = Runner(loaded, RunOptions(state_dir=state_dir, no_input=True, parallel=True),
                    subscribers=subscribers)
    result = asyncio.run(runner.start())
    if recorder is not None:
        recorder.close()
        assert recorder.error is None, recorder.error
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.goal == "ACHIEVED", result.status
    return wall, cpu


def recording(workloads: list[str], action: str, runs: int, root: Path) -> list[dict[str, Any]]:
    from specs.spec.load import load_spec

    folders = generate(root / "workloads", action)
    rows = []
    for key in workloads:
        loaded = load_spec(folders[key])
        steps = loaded.require().step_count()
        samples: dict[str, list[float]] = {"specs": [], "specs+history": []}
        cpus: dict[str, list[float]] = {"specs": [], "specs+history": []}
        state = root / f"state_{key}"
        for i in range(runs + 1):  # the first round warms up (imports, the database file)
            order = ["specs", "specs+history"] if i % 2 else ["specs+history", "specs"]
            for system in order:
                wall, cpu = one_run(loaded, state, system == "specs+history")
                if i:
                    samples[system].append(wall)
                    cpus[system].append(cpu)
        base = statistics.median(samples["specs"])
        with_history = statistics.median(samples["specs+history"])
        rows.append({"workload": key, "action": action, "steps": steps, "runs": runs,
                     "specs_ms": round(base * 1000, 1),
                     "specs_history_ms": round(with_history * 1000, 1),
                     "ratio": round(with_history / base, 3),
                     "added_us_per_step": round((with_history - base) / steps * 1e6, 1),
                     # CPU time of the whole process (every thread): what the history costs
                     # whatever else the machine runs
                     "specs_cpu_ms": round(statistics.median(cpus["specs"]) * 1000, 1),
                     "specs_history_cpu_ms": round(
                         statistics.median(cpus["specs+history"]) * 1000, 1),
                     "cpu_ratio": round(statistics.median(cpus["specs+history"])
                                        / statistics.median(cpus["specs"]), 3),
                     "specs_range_ms": [round(min(samples["specs"]) * 1000, 1),
                                        round(max(samples["specs"]) * 1000, 1)],
                     "history_range_ms": [round(min(samples["specs+history"]) * 1000, 1),
                                          round(max(samples["specs+history"]) * 1000, 1)]})
    return rows


# -- insights on a big history -------------------------------------------------------------------

STEPS_PY = textwrap.dedent('''\
    """Step bodies of the insights benchmark: fail at seeded rates (a counter per step)."""
    import random

    _COUNTS = {}


    def flaky(context=None, name="", rate=1.0):
        n = _COUNTS[name] = _COUNTS.get(name, 0) + 1
        if random.Random(f"{name}-{n}").random() >= rate:
            raise RuntimeError(f"{name} failed (draw {n})")
        return 1
    ''')


def big_spec(folder: Path, steps: int = 50) -> Path:
    """50 python steps in 5 tasks; every 5th step has a backup, rates from 0.5 to 1."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["[meta]", 'goal_descriptor = "insights_bench"', "", "[goal]",
             'description = "A history for the insights benchmark"', "", "[execution]",
             'default_mode = "silent"', "", "[knowledge_capture]", "enabled = false", "",
             "[error_propagation]", 'propagation_strategy = "continue_and_log"', ""]
    module = ["import bench_insights_steps as s", ""]
    for t in range(1, 6):
        lines += ["[[tasks]]", f"id = {t}", f'description = "Task {t} of the benchmark"', ""]
        for k in range(1, steps // 5 + 1):
            i = (t - 1) * 10 + k
            rate = 1.0 if i % 3 else 0.5 + (i % 5) / 10
            module.append(f"def p{i}(context=None): return s.flaky(name='p{i}', rate={rate})")
            lines += ["  [[tasks.steps]]", f"  id = {k}", f'  description = "step {i}"',
                      '  expected_output = "returns"', f"  critical_flag = {str(k == 1).lower()}",
                      "  max_retries = 1", '  execution_method = "python"',
                      f'  callable = "bench_insights_funcs:p{i}"', ""]
            if i % 5 == 0:
                module.append(f"def b{i}(context=None): "
                              f"return s.flaky(name='b{i}', rate=0.97)")
                lines += ["    [[tasks.steps.backups]]", "    id = 1",
                          '    description = "the other way"', '    execution_method = "python"',
                          f'    callable = "bench_insights_funcs:b{i}"', ""]
    (folder / "parameters_insights_bench.toml").write_text("\n".join(lines))
    (folder / "bench_insights_steps.py").write_text(STEPS_PY)
    (folder / "bench_insights_funcs.py").write_text("\n".join(module) + "\n")
    return folder


def make_history(root: Path, runs: int) -> tuple[Path, Path]:
    from specs.engine.runner import Runner, RunOptions
    from specs.history import recorder_for
    from specs.spec.load import load_spec

    folder = big_spec(root / "insights_bench")
    state = root / "state_insights"
    done = len(list(state.glob("runs/*/events.jsonl"))) if state.is_dir() else 0
    sys.path.insert(0, str(folder))
    loaded = load_spec(folder)
    started = time.perf_counter()
    for i in range(done, runs):
        recorder = recorder_for(state, spec=loaded.spec)
        asyncio.run(Runner(loaded, RunOptions(state_dir=state, yes=True),
                           subscribers=[recorder]).start())
        recorder.close()
        if (i + 1) % 100 == 0:
            print(f"  {i + 1} runs recorded ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr)
    return folder, state


def insights_timing(root: Path, history_runs: int, runs: int,
                    window: int = 100) -> dict[str, Any]:
    from specs.history import open_store
    from specs.insights import InsightOptions, analyse

    folder, state = make_history(root, history_runs)
    store = open_store(state)
    times, found = [], []
    for _ in range(runs):
        start = time.perf_counter()
        report = analyse(store, folder, InsightOptions(window=window))
        times.append(time.perf_counter() - start)
        found = [s.kind for s in report.suggestions]
    with store.reading() as conn:
        from sqlalchemy import text
        counts = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()
                  for t in ("runs", "steps", "attempts")}
    store.close()
    return {"history": counts, "window": window, "runs_counted": report.runs_considered,
            "median_s": round(statistics.median(times), 3),
            "range_s": [round(min(times), 3), round(max(times), 3)], "runs": runs,
            "suggestions": {k: found.count(k) for k in sorted(set(found))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workloads", default="w2")
    parser.add_argument("--action", choices=("python", "command"), default="python")
    parser.add_argument("--insights", action="store_true")
    parser.add_argument("--no-recording", action="store_true")
    parser.add_argument("--history-runs", type=int, default=1000)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        root = Path(tmp)
        if not args.no_recording:
            out["recording"] = recording(args.workloads.split(","), args.action, args.runs,
                                         root)
            for row in out["recording"]:
                print(f"{row['workload']} {row['action']} ({row['steps']} steps, median of "
                      f"{row['runs']}): specs {row['specs_ms']} ms, specs+history "
                      f"{row['specs_history_ms']} ms, ratio {row['ratio']}, "
                      f"+{row['added_us_per_step']} µs per step; CPU {row['specs_cpu_ms']} -> "
                      f"{row['specs_history_cpu_ms']} ms (ratio {row['cpu_ratio']})")
        if args.insights:
            cache = args.cache or root
            cache.mkdir(parents=True, exist_ok=True)
            out["insights"] = []
            for window in (100, args.history_runs):  # the default window, then every run
                found = insights_timing(cache, args.history_runs, args.runs, window)
                out["insights"].append(found)
                print(f"insights on {found['history']}, window {window} "
                      f"({found['runs_counted']} runs counted): median {found['median_s']} s "
                      f"(range {found['range_s']}), suggestions {found['suggestions']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
