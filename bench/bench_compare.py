"""Benchmark: two versions of specs on the W1-W4 workloads, interleaved in one run.

Each version is a source tree (a checkout or ``git worktree``) with ``src/specs`` and its own
``bench/bench_parallel.py``. Every round runs ``bench_parallel.py --runs N`` of each version in
a child process (``PYTHONPATH=<tree>/src``, the same interpreter), alternating which goes first
(A B, B A, ...), so a change of load on the machine hits both alike. Reported per action and
workload: the median over the rounds of the ``specs`` row's wall time for each version, and
after / before.

Usage:
  git worktree add --detach /tmp/before <rev>
  python bench/bench_compare.py --before /tmp/before --after . [--rounds 7]
                                [--workloads w1,w2,w3,w4] [--action both] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

Key = tuple[str, str]  # (action, workload)


def one_run(tree: Path, workloads: str, action: str, runs: int) -> dict[Key, float]:
    """The specs rows' median wall times (s) of one ``bench_parallel.py --runs N`` of
    ``tree``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "PYTHONPATH": str(tree / "src")}
        subprocess.run([sys.executable, str(tree / "bench" / "bench_parallel.py"),
                        "--runs", str(runs), "--warmup", "1", "--no-dask", "--no-prefect",
                        "--workloads", workloads, "--action", action, "--json", str(out)],
                       check=True, env=env, capture_output=True, timeout=1800)
        document = json.loads(out.read_text())
    found: dict[Key, float] = {}
    for table, rows in document["tables"].items():
        for row in rows:
            if row["system"] == "specs":
                found[(table, row["workload"])] = row["wall_median_s"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="runs per round and version")
    parser.add_argument("--workloads", default="w1,w2,w3,w4")
    parser.add_argument("--action", choices=["python", "command", "both"], default="both")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    times: dict[str, dict[Key, list[float]]] = {"before": {}, "after": {}}
    for round_ in range(args.rounds):
        order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
        for name in order:
            for key, wall in one_run(trees[name], args.workloads, args.action, args.runs).items():
                times[name].setdefault(key, []).append(wall)
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    keys = sorted(set(times["before"]) & set(times["after"]))
    header = "| action | workload | before (ms) | after (ms) | after / before |"
    print(header if args.markdown else header.replace("|", " ").strip())
    if args.markdown:
        print("|---|---|---:|---:|---:|")
    for key in keys:
        before = statistics.median(times["before"][key]) * 1000
        after = statistics.median(times["after"][key]) * 1000
        cells = [key[0], key[1], f"{before:.1f}", f"{after:.1f}", f"{after / before:.2f}"]
        print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(cells))
    print(f"medians of {args.rounds} interleaved rounds of {args.runs} runs; "
          f"before = {trees['before']}, after = {trees['after']}")


if __name__ == "__main__":
    main()
