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
