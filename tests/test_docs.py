"""Docs that cannot drift: generated pages are up to date, documented codes exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the checkout")
def test_compatibility_page_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_compatibility.py"),
                             "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_diagnostic_code_is_documented() -> None:
    source = "".join(p.read_text() for p in (ROOT / "src" / "specs").rglob("*.py"))
    codes = set(re.findall(r'"([EWI]-[A-Z0-9-]+)"', source))
    page = (ROOT / "docs" / "validation.md").read_text()
    missing = sorted(code for code in codes if f"`{code}`" not in page)
    assert not missing, f"codes missing from docs/validation.md: {missing}"


def test_readme_map_of_the_code_agrees_with_the_tree() -> None:
    """Every package and module of src/specs is named in README's map, and every file the
    map names exists."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Map of the code", 1)[1].split("```", 2)[1]
    src = ROOT / "src" / "specs"
    packages = sorted(p.name for p in src.iterdir() if (p / "__init__.py").is_file())
    missing = [f"{name}/" for name in packages if f"{name}/" not in block]
    for path in sorted(src.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        if path.stem not in block:
            missing.append(str(path.relative_to(src)))
    assert missing == [], f"README's map of the code does not name: {missing}"
    named = set(re.findall(r"\b([a-z_]+)\.py\b", block))
    existing = {p.stem for p in src.rglob("*.py")}
    assert sorted(named - existing) == []


def test_ci_runs_the_test_command_readme_gives() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_every_command_is_in_readme() -> None:
    """`specs --help` and README's table of commands name the same commands."""
    from typer.main import get_command

    from specs.cli import app

    names = sorted(get_command(app).commands)  # type: ignore[attr-defined]
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in names if f"`specs {n}" not in readme]
    assert missing == [], f"commands missing from README.md: {missing}"
