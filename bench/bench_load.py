"""Benchmark: load + validate a generated spec with 10,000 steps.

Reports the median wall time of ``load_spec`` + ``validate`` over several runs, the ratio against
a baseline measured in the same run (``tomllib.loads`` of the same file: the least a
pure-Python loader must do), and the peak memory of one load + validate in a fresh process
(``VmHWM``, and its growth over the resident size after imports).

``--parsers`` measures instead what a second TOML parser would buy: ``tomllib`` (the one
``specs`` uses) against ``rtoml`` (``pip install rtoml``; ``specs`` used it for files over
64 KB until issue 12), interleaved run by run, on real specs of ../shared/corpus and generated
ones of 1,000 and 10,000 steps: the parse alone and the whole ``load_spec`` + ``validate``
with each parser put in place of ``specs.spec.tomlio._parse``, and whether both parse every
file to the same document.

Usage: python bench/bench_load.py [--steps 10000] [--runs 5] [--parsers]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path


def write_spec(folder: Path, steps: int, per_task: int = 5) -> Path:
    """A spec of ``steps`` steps, 5 per task, each with a backup and a dependency."""
    lines = ['[meta]', 'goal_descriptor = "big"', "", "[goal]",
             'description = "Benchmark: load and validate a very large spec"', "",
             "[execution]", 'default_mode = "silent"', "parallel_enabled = true", ""]
    md = ["# Big", "", "## Goal", "", "Benchmark: load and validate a very large spec", "",
          "## Tasks", ""]
    for t in range(1, steps // per_task + 1):
        lines += ["[[tasks]]", f"id = {t}", f'description = "Task {t} of the benchmark"', ""]
        md += [f"### Task {t}: Task {t} of the benchmark", ""]
        for s in range(1, per_task + 1):
            lines += ["  [[tasks.steps]]", f"  id = {s}",
                      f'  description = "Do part {s} of task {t}"',
                      f'  expected_output = "part {s} of task {t} is done and checked"',
                      f"  critical_flag = {'true' if s % 2 else 'false'}",
                      '  mode = "silent"', "  max_retries = 1",
                      f'  command = "echo {t}.{s}"']
            if s > 1:
                lines.append(f"  depends_on = [{s - 1}]")
            lines += ["", "    [[tasks.steps.backups]]", "    id = 1",
                      f'    description = "Another way to do part {s} of task {t}"',
                      '    trigger_condition = "primary_failure"', ""]
            md += [f"- **Step {t}.{s}:** Do part {s} of task {t}",
                   f"  - **Expected output:** part {s} of task {t} is done and checked", ""]
    path = folder / "parameters_big.toml"
    path.write_text("\n".join(lines))
    (folder / "spec_big.md").write_text("\n".join(md))
    return path


CHILD = """
import sys
from specs.spec.load import load_spec
from specs.spec.validate import validate

def status(field):
    # VmHWM starts afresh at exec (ru_maxrss would include the forking parent's memory)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0

base = status("VmRSS")
loaded = load_spec(sys.argv[1])
found = validate(loaded)
peak = status("VmHWM")
print(peak - base, peak, loaded.spec.step_count(), len(found))
"""


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def compare_parsers(runs: int) -> int:
    """tomllib against rtoml, interleaved: the parse alone and the whole load + validate."""
    try:
        import rtoml
    except ImportError:
        print("rtoml is not installed: pip install rtoml", file=sys.stderr)
        return 2
    from specs.spec import tomlio
    from specs.spec.load import load_spec
    from specs.spec.validate import validate

    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    real = sorted(corpus.rglob("parameters_*.toml"), key=lambda p: p.stat().st_size)
    parsers = {"tomllib": tomllib.loads, "rtoml": rtoml.loads}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("corpus median", real[len(real) // 2]), ("corpus largest", real[-1])]
        for steps in (1000, 10_000):
            folder = Path(tmp) / f"big{steps}"
            folder.mkdir()
            cases.append((f"{steps:,} steps", write_spec(folder, steps)))
        for name, path in cases:
            text = path.read_text(encoding="utf-8")
            repeat = max(3, runs) if len(text) > 1_000_000 else max(runs, 40)
            parse: dict[str, list[float]] = {k: [] for k in parsers}
            whole: dict[str, list[float]] = {k: [] for k in parsers}
            for _ in range(repeat):
                for key, loads in parsers.items():  # interleaved: one of each per round
                    start = time.perf_counter()
                    loads(text)
                    parse[key].append(time.perf_counter() - start)
                    tomlio._parse = loads  # type: ignore[assignment]
                    start = time.perf_counter()
                    validate(load_spec(path))
                    whole[key].append(time.perf_counter() - start)
            tomlio._parse = tomllib.loads  # type: ignore[assignment]
            ratio = statistics.median(whole["rtoml"]) / statistics.median(whole["tomllib"])
            rows.append({
                "spec": name, "kb": round(len(text.encode()) / 1000), "runs": repeat,
                "parse_ms": {k: _median_ms(v) for k, v in parse.items()},
                "load_validate_ms": {k: _median_ms(v) for k, v in whole.items()},
                "load_validate_saved_by_rtoml": f"{1 - ratio:.0%}",
                "same_document": tomllib.loads(text) == rtoml.loads(text),
            })
    print(json.dumps(rows, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--parsers", action="store_true",
                        help="compare tomllib with rtoml (interleaved) instead")
    args = parser.parse_args()
    if args.parsers:
        return compare_parsers(args.runs)
    from specs.spec.load import load_spec
    from specs.spec.validate import validate

    with tempfile.TemporaryDirectory() as tmp:
        path = write_spec(Path(tmp), args.steps)
        size = path.stat().st_size
        base, ours = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            tomllib.loads(path.read_text())
            base.append(time.perf_counter() - start)
            start = time.perf_counter()
            loaded = load_spec(path)
            found = validate(loaded)
            ours.append(time.perf_counter() - start)
        assert loaded.spec is not None and loaded.spec.step_count() == args.steps, found[:3]
        child = subprocess.run([sys.executable, "-c", CHILD, str(path)], check=True,
                               capture_output=True, text=True).stdout.split()
    result = {
        "steps": args.steps, "file_mb": round(size / 1e6, 2), "runs": args.runs,
        "median_load_validate_s": round(statistics.median(ours), 3),
        "median_tomllib_baseline_s": round(statistics.median(base), 3),
        "ratio_vs_tomllib": round(statistics.median(ours) / statistics.median(base), 1),
        "peak_rss_growth_mb": round(int(child[0]) / 1024, 1),
        "peak_rss_total_mb": round(int(child[1]) / 1024, 1),
        "diagnostics": int(child[3]),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
