"""Pre-flight (src/specs/engine/preflight.py): what a run needs beyond a valid spec."""

from __future__ import annotations

from pathlib import Path

import specs
from specs.engine import preflight

SPEC = """\
[meta]
goal_descriptor = "llm"

[goal]
description = "Three steps an LLM does, one judged"

[[tasks]]
id = 1
description = "Think"
""" + "".join(f"""
[[tasks.steps]]
id = {i}
description = "Think {i}"
expected_output = "a thought"
critical_flag = false
""" for i in (1, 2, 3)) + """
[[tasks.steps]]
id = 4
description = "A command judged by an LLM"
expected_output = "a friendly line"
critical_flag = false
command = "echo hi"
verify_with = "llm"
"""


def test_no_provider_is_said_once_naming_the_steps(tmp_path: Path) -> None:
    folder = tmp_path / "llm"
    folder.mkdir()
    (folder / "parameters_llm.toml").write_text(SPEC)
    loaded = specs.open_spec(folder)
    found = [d for d in preflight.diagnostics(loaded, strict=False, cognitive=False,
                                              judge=False) if d.code == "E-NO-PROVIDER"]
    assert [d.message for d in found] == [
        "3 steps are cognitive (LLM) steps (1.1, 1.2, 1.3) and no LLM provider is configured",
        'step 1.4 has verify_with = "llm" and no LLM provider is configured to judge the '
        "output"]
    assert found[0].location.line == SPEC.splitlines().index("[[tasks.steps]]") + 1
    assert not preflight.diagnostics(loaded, strict=False, cognitive=True, judge=True) or all(
        d.code != "E-NO-PROVIDER"
        for d in preflight.diagnostics(loaded, strict=False, cognitive=True, judge=True))
    result = specs.run_spec(folder, specs.RunOptions(state_dir=tmp_path / "state",
                                                     no_input=True), environ={})
    assert result.status == "halted_validation"
    assert result.state.end is not None and result.state.end.reason == "2 validation errors"


def test_specs_run_prints_each_pre_flight_error_once(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    folder = tmp_path / "llm"
    folder.mkdir()
    (folder / "parameters_llm.toml").write_text(SPEC)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI", "ANTHROPIC", "SPECS_LLM"))}
    done = subprocess.run([sys.executable, "-m", "specs", "run", str(folder), "--no-input",
                           "--state-dir", str(tmp_path / "state")], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("E-NO-PROVIDER") == 2, done.stderr  # two errors, once each
