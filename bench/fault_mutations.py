"""Fault trial: mutated copies of the real parameters files through ``specs validate``.

Each trial file is one real ``parameters_*.toml`` of ``../shared/corpus`` changed by one to
three mutations drawn from :data:`MUTATIONS` (arrays nested hundreds deep, inline tables a
thousand deep, integers of thousands of digits, huge floats, values swapped for another type
(a datetime where a string is expected ...), the text cut short, random byte flips, dotted keys
of tens of thousands of parts, lines deleted or repeated, counts and durations far out of
range). The file is written beside the spec's own Markdown (so the Markdown side is loaded too)
and checked with the real command line entry point (``specs.cli.main``) in a worker process.

A trial counts **internal errors** (exit 70, or a traceback on stdout/stderr), **slow runs**
(over 10 s), and the exit codes. The acceptance figures of issue 13: 0 internal errors and 0
runs over 10 s on 2,000 files.

Usage: python bench/fault_mutations.py [--files 2000] [--seed 13] [--workers 2] [--keep DIR]

tests/test_bad_input.py runs a smaller seeded trial (same mutations, in-process) on every CI run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SLOW_SECONDS = 10.0
HARD_LIMIT_SECONDS = 60  # a run still going then is stopped and counted as slow


def corpus_files(corpus: Path = CORPUS) -> list[Path]:
    return sorted(corpus.rglob("parameters_*.toml"))


# -- mutations: each takes (text, rng) and returns new text --------------------------------------


def _value_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith(
        ("#", "["))]


def _replace_value(text: str, rng: random.Random, value: str) -> str:
    lines = text.split("\n")
    candidates = _value_lines(lines)
    if not candidates:
        return text + f"\nx = {value}\n"
    i = rng.choice(candidates)
    key = lines[i].split("=", 1)[0]
    lines[i] = f"{key}= {value}"
    return "\n".join(lines)


def _insert_line(text: str, rng: random.Random, line: str) -> str:
    lines = text.split("\n")
    lines.insert(rng.randrange(len(lines) + 1), line)
    return "\n".join(lines)


def deep_array(text: str, rng: random.Random) -> str:
    n = rng.choice([300, 500, 800, 2000])
    return _replace_value(text, rng, "[" * n + "1" + "]" * n)


def deep_inline_table(text: str, rng: random.Random) -> str:
    n = rng.choice([500, 1000, 3000])
    return _replace_value(text, rng, "{ a = " * n + "1" + " }" * n)


def deep_unclosed(text: str, rng: random.Random) -> str:
    return _replace_value(text, rng, rng.choice(["[", "{ a = "]) * rng.choice([600, 5000]))


def huge_int(text: str, rng: random.Random) -> str:
    digits = rng.choice([25, 401, 4301, 10_000, 50_000])
    return _replace_value(text, rng, rng.choice(["", "-"]) + "9" * digits)


def huge_float(text: str, rng: random.Random) -> str:
    return _replace_value(text, rng, rng.choice(
        ["1e400", "-1e400", "inf", "nan", "1" + "0" * 400 + ".0", "1e-400", "9" * 5000 + ".5"]))


def out_of_range(text: str, rng: random.Random) -> str:
    key = rng.choice(["max_retries", "timeout_seconds", "total_timeout_seconds",
                      "max_parallel_steps", "max_iterations", "escalation_threshold",
                      "backoff_max_seconds", "max_turns", "max_output_tokens"])
    value = rng.choice(["10" + "0" * 18, "9223372036854775807", "1e300", "inf", "-1", "0"])
    return _insert_line(text, rng, f"{key} = {value}")


SWAPS = ["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27 07:32:00.999999",
         "42", "-7", "3.5", "true", "[]", "[1, 'a', true]", "{ a = 1 }", "{}", '""',
         '"text"', "[[1], [2]]", "0x7fffffffffffffff", "nan", '"""\nmulti\n"""']


def type_swap(text: str, rng: random.Random) -> str:
    return _replace_value(text, rng, rng.choice(SWAPS))


def truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randrange(len(text) + 1)]


def byte_flips(text: str, rng: random.Random) -> str:
    data = bytearray(text.encode("utf-8", errors="surrogateescape"))
    for _ in range(rng.choice([1, 3, 10, 50])):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return data.decode("utf-8", errors="surrogateescape")


def long_dotted_key(text: str, rng: random.Random) -> str:
    parts = rng.choice([100, 1000, 20_000, 40_000])
    part = rng.choice(["a", "k1", '"q"'])
    key = ".".join([part] * parts)
    return _insert_line(text, rng, rng.choice([f"{key} = 1", f"[{key}]", f"x = {{ {key} = 1 }}"]))


def delete_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 5)):
        if lines:
            del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def repeat_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    lines[i:i] = [lines[i]] * rng.choice([2, 50])
    return "\n".join(lines)


def flip_tables(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    headers = [i for i, line in enumerate(lines) if line.lstrip().startswith("[")]
    if headers:
        i = rng.choice(headers)
        line = lines[i]
        lines[i] = (line.replace("[[", "[", 1).replace("]]", "]", 1) if "[[" in line
                    else line.replace("[", "[[", 1).replace("]", "]]", 1))
    return "\n".join(lines)


MUTATIONS: dict[str, Callable[[str, random.Random], str]] = {
    f.__name__: f for f in (deep_array, deep_inline_table, deep_unclosed, huge_int, huge_float,
                            out_of_range, type_swap, truncate, byte_flips, long_dotted_key,
                            delete_lines, repeat_lines, flip_tables)}


@dataclass(frozen=True)
class Case:
    """One trial file: which corpus file, which mutations, and the text (possibly not UTF-8)."""

    index: int
    source: Path
    kinds: tuple[str, ...]
    text: str


def cases(count: int, seed: int, files: list[Path] | None = None) -> list[Case]:
    """``count`` mutated files, the same for the same seed."""
    files = files or corpus_files()
    rng = random.Random(seed)
    texts = {path: path.read_text("utf-8") for path in files}
    out = []
    for index in range(count):
        source = files[index % len(files)]
        text = texts[source]
        kinds = tuple(rng.choice(list(MUTATIONS)) for _ in range(rng.choice([1, 1, 2, 3])))
        for kind in kinds:
            text = MUTATIONS[kind](text, rng)
        out.append(Case(index, source, kinds, text))
    return out


def write_case(case: Case, parent: Path) -> Path:
    """A spec folder for ``case``: the mutated parameters file beside the original Markdown."""
    folder = parent / f"case_{case.index:05d}"
    folder.mkdir(parents=True)
    for md in case.source.parent.glob("*.md"):
        shutil.copy(md, folder / md.name)
    (folder / case.source.name).write_bytes(case.text.encode("utf-8", errors="surrogateescape"))
    return folder


# -- running: the real CLI entry point, in-process, with a hard time limit -----------------------


@dataclass(frozen=True)
class Result:
    index: int
    kinds: tuple[str, ...]
    code: int
    seconds: float
    internal: bool
    first_line: str


class _Timeout(BaseException):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``specs ARGS`` through :func:`specs.cli.main`: (exit code, stdout, stderr)."""
    from specs.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["specs", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def check(case: Case, parent: Path, limit: int = HARD_LIMIT_SECONDS) -> Result:
    folder = write_case(case, parent)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    start = time.perf_counter()
    try:
        code, out, err = run_cli(["validate", str(folder)])
    except _Timeout:
        code, out, err = -1, "", f"stopped after {limit} s"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    shutil.rmtree(folder, ignore_errors=True)
    internal = code == 70 or "Traceback" in out or "Traceback" in err
    lines = (err if internal or code == -1 else out or err).strip().splitlines()
    return Result(case.index, case.kinds, code, seconds, internal, lines[0] if lines else "")


def _work(job: tuple[list[Case], str]) -> list[Result]:
    batch, parent = job
    return [check(case, Path(parent)) for case in batch]


def trial(count: int, seed: int, workers: int = 2) -> list[Result]:
    all_cases = cases(count, seed)
    with tempfile.TemporaryDirectory() as tmp:
        batches = [all_cases[i::workers] for i in range(workers)]
        if workers == 1:
            results = _work((batches[0], tmp))
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = [r for part in pool.map(_work, [(b, tmp) for b in batches])
                           for r in part]
    return sorted(results, key=lambda r: r.index)


def summary(results: list[Result]) -> dict[str, object]:
    times = [r.seconds for r in results]
    per_kind: dict[str, int] = Counter(k for r in results for k in r.kinds)
    return {
        "files": len(results),
        "internal_errors": sum(r.internal for r in results),
        "over_10_s": sum(r.seconds > SLOW_SECONDS or r.code == -1 for r in results),
        "exit_codes": dict(sorted(Counter(r.code for r in results).items())),
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 3),
        "slowest": [(r.kinds, round(r.seconds, 2)) for r in
                    sorted(results, key=lambda r: -r.seconds)[:3]],
        "mutations": dict(sorted(per_kind.items())),
        "internal": [(r.index, r.kinds, r.first_line[:160]) for r in results if r.internal],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = trial(args.files, args.seed, args.workers)
    figures = summary(results)
    figures["wall_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(figures, indent=2))
    return 0 if not figures["internal_errors"] and not figures["over_10_s"] else 1


if __name__ == "__main__":
    sys.exit(main())
