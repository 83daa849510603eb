"""Benchmark: the command executor before and after its speed tricks were removed, interleaved.

Issue 12 asks to keep a speed trick only where a benchmark shows it pays. The command executor
had two: a process started while no other ran (a chain of commands) was started on the event
loop's thread and watched by the loop (a pidfd and the pipes in its selector; four ways in all
to wait for a process), and the child environment was copied from a decoded copy of
``os.environ`` kept while CPython's raw store (``os.environ._data``) did not change. Both are
gone: every process is started and waited for on a worker thread, and the environment is
``dict(os.environ)``. This measures what that cost.

The executor of ``--before`` (default ``8d5b3c8``: ``src/specs/executors/command.py`` at that
commit, read with ``git show`` and loaded as a module of its own) and the current one run the
shared workloads of bench/bench_parallel.py with ``--action command`` (W1 a chain of 1,000
``true``, W2 1,000 at once then a join, W3 200 ``sleep 0.05`` at once, W4 20 layers of 50) as
``specs`` runs (``Runner.start()`` with the event log, progress and notepad writers; only the
``command`` executor differs), one after the other within every round, the order shuffled per
round so a change of load hits both alike. Printed per workload: the median wall time, the
CPU time of the engine's process (its threads, not the commands) and the median attempt
(``attempt-ended`` ``duration_ms``), before and after, and after / before.

Usage:
  python bench/bench_executor.py [--runs 9] [--workloads w1,w2,w3,w4] [--before REF] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_parallel import generate, read_workload  # the shared workloads

from specs.executors import command
from specs.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[1]


def executor_at(ref: str) -> types.ModuleType:
    """``src/specs/executors/command.py`` as it was at ``ref``, loaded as a module."""
    text = subprocess.run(["git", "show", f"{ref}:src/specs/executors/command.py"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"command_at_{ref}")
    module.__file__ = f"{ref}:src/specs/executors/command.py"
    sys.modules[module.__name__] = module  # (dataclasses look their module up)
    exec(compile(text, module.__file__, "exec"), module.__dict__)
    return module


def one_run(loaded: Any, max_parallel: int, state: Path,
            executors: dict[str, Any]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, the median attempt in seconds)."""
    from specs.engine.runner import Runner, RunOptions
    from specs.record.notepad import NotepadWriter
    from specs.record.progress import ProgressWriter

    attempts: list[float] = []
    subscribers: list[Callable[..., Any]] = [
        ProgressWriter(loaded.spec, loaded.progress_path),
        NotepadWriter(loaded.spec, loaded.notepad_path, descriptor=loaded.descriptor),
        lambda e, s: attempts.append(e.duration_ms / 1000)
        if e.name == "attempt-ended" else None]
    runner = Runner(loaded, RunOptions(state_dir=state, no_input=True, parallel=True,
                                       max_parallel=max_parallel), subscribers=subscribers)
    runner.executors.update(executors)
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(runner.start())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.goal == "ACHIEVED", result.status
    return wall, cpu, statistics.median(attempts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--workloads", default="w1,w2,w3,w4")
    parser.add_argument("--before", default="8d5b3c8", help="the git ref of 'before'")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    old = executor_at(args.before)
    variants: dict[str, dict[str, Any]] = {
        "before": {"command": old.run_command, "tool": old.run_tool, "script": old.run_tool},
        "after": {"command": command.run_command, "tool": command.run_tool,
                  "script": command.run_tool}}
    keys = [k for k in args.workloads.split(",") if k]
    rng = random.Random(13)
    found: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="specs-tricks-") as tmp:
        root = Path(tmp)
        folders = generate(root / "specs", "command")
        for key in keys:
            wl = read_workload(key, folders[key])
            loaded = load_spec(wl.folder)
            names = list(variants)
            for round_ in range(args.runs + 1):  # the first round warms up, not counted
                rng.shuffle(names)
                for name in names:
                    state = root / "state" / f"{key}-{name}-{round_}"
                    measured = one_run(loaded, wl.max_parallel, state, variants[name])
                    shutil.rmtree(state, ignore_errors=True)
                    if round_:
                        for measure, value in zip(("wall", "engine CPU", "attempt"), measured,
                                                  strict=True):
                            found.setdefault((key, measure, name), []).append(value)
            print(f"{key} done", file=sys.stderr, flush=True)
    head = ["workload", "measure", "before", "after", "after / before"]
    rows = []
    for key in keys:
        for measure, unit, shown in (("wall", 1, "s"), ("engine CPU", 1, "s"),
                                     ("attempt", 1000, "ms")):
            before = statistics.median(found[(key, measure, "before")])
            after = statistics.median(found[(key, measure, "after")])
            rows.append([key, measure, f"{before * unit:.3f} {shown}",
                         f"{after * unit:.3f} {shown}", f"{after / before:.3f}"])
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        print("\n".join("| " + " | ".join(r) + " |" for r in rows))
    else:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"\nmedians of {args.runs} runs per cell, interleaved; {os.cpu_count()} cores; "
          f"before = {args.before}")


if __name__ == "__main__":
    main()
