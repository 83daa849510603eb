"""The worked example of docs/insights.md and the Python examples of docs/history.md run as
written (in a temporary folder, with this checkout's ``specs`` first on PATH)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def blocks(page: str, language: str, after: str = "") -> list[str]:
    text = (ROOT / "docs" / page).read_text()
    text = text[text.index(after):] if after else text
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_the_insights_worked_example_runs_as_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(NO_COLOR="1", COLUMNS="200")
    scripts = blocks("insights.md", "sh", after="## Worked example")
    assert len(scripts) == 2
    outputs = []
    for script in scripts:
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(proc.stdout)
    shown = blocks("insights.md", "", after="The analysis finds")[0]
    for line in shown.splitlines():  # the figures the page shows are the real ones
        assert line.strip() == "..." or line in outputs[0], line
    assert "applied promote-backup-caf91f91: step 1.1: backup 1" in outputs[1]
    assert "-  command = \"sh flaky.sh api 0.2\"" in outputs[1]
    assert "promote-backup-caf91f91 (promote-backup)" in outputs[1]
    for code in blocks("history.md", "python"):
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, code + proc.stdout + proc.stderr
        assert "run_" in proc.stdout
