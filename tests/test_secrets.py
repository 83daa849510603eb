"""Secrets never reach what a run writes (src/specs/secrets.py): the key-echo cases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llm_server import LlmServer, openai_chat
from llm_server import llm_server_fixture as llm_server_fixture  # the llm_server fixture
from specs import events as ev
from specs.secrets import Masker, secret_names

KEY = "sk-test-0123456789abcdefSECRET"
TOKEN = "ghp_tokenvalue42424242"

SPEC = """\
[meta]
goal_descriptor = "leaky"

[goal]
description = "Echo secrets in every way a run can"

[[tasks]]
id = 1
description = "Leak"

[[tasks.steps]]
id = 1
description = "The model repeats the key"
expected_output = "a sentence"
critical_flag = false

[[tasks.steps]]
id = 2
description = "A command prints the key and the token"
expected_output = "a line"
critical_flag = false
command = "echo key=$OPENAI_API_KEY token=$GITHUB_TOKEN"

[[tasks.steps]]
id = 3
description = "A command fails with the key in its error"
expected_output = "nothing"
critical_flag = false
max_retries = 0
command = "echo \\"bad key $OPENAI_API_KEY\\" >&2; exit 3"
"""


def test_which_variables_are_secrets() -> None:
    env = {"OPENAI_API_KEY": KEY, "GITHUB_TOKEN": TOKEN, "MY_PASSWORD": "hunter2hunter2",
           "SHORT_KEY": "abc", "HOME": "/root/somewhere/long", "KEYBOARD": "us-international"}
    assert secret_names(env) == ["GITHUB_TOKEN", "MY_PASSWORD", "OPENAI_API_KEY"]
    masker = Masker(env)
    assert masker.text(f"x {KEY} y {TOKEN}") == \
        "x [secret OPENAI_API_KEY] y [secret GITHUB_TOKEN]"
    event = ev.AttemptEnded(step="1.1", method="primary", attempt=1, outcome="failure",
                            failure_reason=f"401 for {KEY}", output={"echo": [KEY, 1]})
    masker.event(event)
    assert KEY not in repr(event)
    assert event.output == {"echo": ["[secret OPENAI_API_KEY]", 1]}
    assert not Masker({"HOME": "/root"})  # nothing to mask: no cost on the hot path


def test_no_secret_reaches_the_log_the_projections_or_the_json_stream(
        llm_server: LlmServer, tmp_path: Path) -> None:
    folder = tmp_path / "leaky"
    folder.mkdir()
    (folder / "parameters_leaky.toml").write_text(SPEC)
    llm_server.script(openai_chat(f"Sure! Your key is {KEY}."))
    env = {**os.environ, "OPENAI_API_KEY": KEY, "GITHUB_TOKEN": TOKEN,
           "OPENAI_BASE_URL": llm_server.openai_url}
    done = subprocess.run([sys.executable, "-m", "specs", "run", str(folder), "--no-input",
                           "--json", "--state-dir", str(tmp_path / "state")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert "run-ended" in done.stdout, done.stderr
    assert "[secret OPENAI_API_KEY]" in done.stdout  # the echoes are there, masked
    leaks = [name for name, text in [("stdout", done.stdout), ("stderr", done.stderr)]
             if KEY in text or TOKEN in text]
    written = [p for p in [*folder.rglob("*"), *(tmp_path / "state").rglob("*")]
               if p.is_file() and "outputs" not in p.parts]
    assert any(p.name == "events.jsonl" for p in written)
    assert any(p.name == "progress_leaky.json" for p in written)
    leaks += [str(p) for p in written
              if KEY.encode() in p.read_bytes() or TOKEN.encode() in p.read_bytes()]
    assert leaks == []
