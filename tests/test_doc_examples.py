"""Every whole spec the docs show runs as written (STYLE.md: a docs example that does not run
as written is a bug).

A whole spec is a fenced ``toml`` block of a page under docs/ with a ``[goal]`` table and
``[[tasks]]``; fragments (one table, a few keys) are illustrations and are not run. Each spec is
saved as ``spec_report/parameters_report.toml`` (the name docs/format.md tells readers to use),
then validated (exit 0) and run with ``--yes --no-input`` (exit 0: goal ACHIEVED) through the
real command line, with its expected files checked.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```toml\n(.*?)^```", re.M | re.S)


def whole_specs() -> list[tuple[str, str]]:
    found = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for n, match in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8")), 1):
            text = match.group(1)
            if re.search(r"^\[goal\]", text, re.M) and re.search(r"^\[\[tasks\]\]", text, re.M):
                found.append((f"{page.name}#{n}", text))
    return found


SPECS = whole_specs()


def test_the_docs_show_a_whole_spec() -> None:
    assert any(name.startswith("format.md") for name, _ in SPECS)


@pytest.mark.parametrize("name,text", SPECS, ids=[name for name, _ in SPECS])
def test_a_docs_spec_validates_and_runs_as_written(name, text, run_cli, tmp_path) -> None:
    folder = tmp_path / "spec_report"
    folder.mkdir()
    (folder / "parameters_report.toml").write_text(text, encoding="utf-8")
    code, out, err = run_cli("validate", folder, cwd=tmp_path)
    assert code == 0, out + err
    code, out, err = run_cli("run", folder, "--yes", "--no-input", cwd=tmp_path)
    assert code == 0, out + err
    assert "goal ACHIEVED" in err, err
    for task in tomllib.loads(text)["tasks"]:
        for step in task.get("steps", []):
            for pattern in step.get("expected_files", []):
                assert list(folder.glob(pattern)), (name, pattern)
