"""Benchmark: the engine's overhead per step, against a bare loop doing the same work.

Two workloads, run strictly in order (the sequential engine):

- ``python``: N no-op ``python`` steps (``callable = "bench_noop:noop"``);
- ``command``: M no-op ``command`` steps (``command = "true"``).

The engine runs with everything a user gets: events appended to events.jsonl (grouped fsync),
the run state, progress_X.json (throttled) and the notepad. The baseline, measured in the same
process and run, is a bare asyncio loop doing the same work: calling the function N times, or
starting ``/bin/sh -c true`` M times. Reported: medians over runs, overhead per step
((engine - baseline) / steps) and the ratio.

Usage: python bench/bench_engine.py [--python-steps 1000] [--command-steps 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

NOOP = "def noop(context=None):\n    return 1\n"


def write_spec(folder: Path, steps: int, kind: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_noop.py").write_text(NOOP)
    lines = ["[meta]", f'goal_descriptor = "{folder.name}"', "", "[goal]",
             f'description = "Benchmark: {steps} no-op {kind} steps"', "",
             "[execution]", 'default_mode = "silent"', ""]
    per_task = 5
    for t in range(1, steps // per_task + 1):
        lines += ["[[tasks]]", f"id = {t}", f'description = "task {t}"']
        for s in range(1, per_task + 1):
            lines += ["[[tasks.steps]]", f"id = {s}", f'description = "no-op {t}.{s}"',
                      'expected_output = "nothing"', "critical_flag = false"]
            if kind == "python":
                lines += ['execution_method = "python"', 'callable = "bench_noop:noop"']
            else:
                lines += ['command = "true"']
        lines.append("")
    (folder / f"parameters_{folder.name}.toml").write_text("\n".join(lines))
    return folder


async def bare_python(steps: int, folder: Path) -> float:
    sys.path.insert(0, str(folder))
    import bench_noop  # type: ignore[import-not-found]

    start = time.perf_counter()
    for _ in range(steps):
        bench_noop.noop(None)
        await asyncio.sleep(0)
    return time.perf_counter() - start


async def bare_command(steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", "true", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        await proc.communicate()
    return time.perf_counter() - start


def engine_run(folder: Path, state: Path) -> tuple[float, int]:
    from specs.engine.runner import Runner, RunOptions
    from specs.record.notepad import NotepadWriter
    from specs.record.progress import ProgressWriter
    from specs.spec.load import load_spec

    loaded = load_spec(folder)
    assert loaded.spec is not None
    subscribers = [ProgressWriter(loaded.spec, loaded.progress_path),
                   NotepadWriter(loaded.spec, loaded.notepad_path,
                                 descriptor=loaded.descriptor)]
    runner = Runner(loaded, RunOptions(state_dir=state, no_input=True),
                    subscribers=subscribers)  # type: ignore[arg-type]
    gc.freeze()  # as `specs run` does before its run (src/specs/cli_run.py)
    start = time.perf_counter()
    result = asyncio.run(runner.start())
    elapsed = time.perf_counter() - start
    assert result.goal == "ACHIEVED", (result.status, result.state.end)
    return elapsed, runner.state.events


def measure(kind: str, steps: int, runs: int, root: Path) -> dict[str, object]:
    folder = write_spec(root / f"{kind}_{steps}", steps, kind)
    engine, bare, events = [], [], 0
    for i in range(runs):
        if kind == "python":
            bare.append(asyncio.run(bare_python(steps, folder)))
        else:
            bare.append(asyncio.run(bare_command(steps)))
        elapsed, events = engine_run(folder, root / f"state_{kind}_{i}")
        engine.append(elapsed)
    e, b = statistics.median(engine), statistics.median(bare)
    return {"workload": f"{steps} no-op {kind} steps", "runs": runs,
            "engine_median_s": round(e, 4), "bare_loop_median_s": round(b, 4),
            "overhead_per_step_us": round((e - b) / steps * 1e6, 1),
            "engine_per_step_us": round(e / steps * 1e6, 1),
            "ratio_engine_vs_bare": round(e / b, 2) if b else None,
            "events_per_run": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-steps", type=int, default=1000)
    parser.add_argument("--command-steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = [measure("python", args.python_steps, args.runs, root),
                   measure("command", args.command_steps, args.runs, root)]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
