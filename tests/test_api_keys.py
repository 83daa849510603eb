"""API keys never appear in events, progress, notepad, logs, cassettes or `--json` output.

Runs specs through the CLI with distinctive fake keys in OPENAI_API_KEY and ANTHROPIC_API_KEY
against the real local server (which accepts any key, and quotes it back in its 401 answers as
some real servers do): a recorded successful run with a tool loop, a call refused with 401,
and a pre-flight refused with 401. Then every file under the spec folder and the state folder,
and every stdout and stderr, is searched for the keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_server import (
    LlmServer,
    Recorded,
    Reply,
    anthropic_message,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from test_llm_steps import HEAD, cli, write

OPENAI_KEY = "sk-proj-LEAKCHECK-0a9f3e7c1b5d"
ANTHROPIC_KEY = "sk-ant-api03-LEAKCHECK-7d2c4e6f8a0b"
KEYS = (OPENAI_KEY, ANTHROPIC_KEY, "LEAKCHECK")

SPEC = HEAD + """
[knowledge_capture]
enabled = true

[[tasks]]
id = 1
description = "Greet the team"

[[tasks.steps]]
id = 1
description = "Write hello.txt with a greeting"
expected_output = "a greeting"
critical_flag = true
max_retries = 0
"""


def refuse(recorded: Recorded) -> Reply:
    key = recorded.headers.get("x-api-key") or recorded.headers.get(
        "authorization", "").removeprefix("Bearer ")
    return Reply.json({"error": {"type": "authentication_error",
                                 "message": f"Incorrect API key provided: {key}"}}, 401)


def test_keys_appear_nowhere(llm_server: LlmServer, tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
           "OPENAI_BASE_URL": llm_server.openai_url, "ANTHROPIC_BASE_URL": llm_server.url}
    folder = write(tmp_path, SPEC)
    state = tmp_path / "state"
    outputs: list[str] = []

    def specs(*args: Any) -> int:
        done = cli(*args, env=env)
        outputs.extend([done.stdout, done.stderr])
        return done.returncode

    # 1. a recorded run with a tool loop (openai), then its replay and the run commands
    llm_server.script(
        openai_chat(None, tool_calls=[("c1", "write_file",
                                       {"path": "hello.txt", "content": "hi\n"})]),
        openai_chat("Wrote hello.txt"))
    assert specs("run", folder, "--record", "--run-id", "rec", "--json", "--cache",
                 "--state-dir", state) == 0
    assert specs("run", folder, "--replay", "rec", "--json", "--state-dir", state) == 0
    assert specs("runs", "--json", "--state-dir", state) == 0
    assert specs("show-run", "rec", "--json", "--state-dir", state) == 0
    assert specs("show-run", "rec", "--state-dir", state) == 0
    # 2. anthropic: the call is refused with 401 (a run that errors)
    llm_server.handler = lambda r: (refuse(r) if r.method == "POST"
                                    else anthropic_message("unused"))
    assert specs("run", folder, "--provider", "anthropic", "--json", "--state-dir",
                 state) == 1
    # 3. the pre-flight is refused with 401 (both providers)
    llm_server.handler = refuse
    for provider in ("openai", "anthropic"):
        assert specs("run", folder, "--provider", provider, "--json", "--state-dir",
                     state) == 2

    # the keys were sent, and quoted back by the server...
    sent = [r.headers.get("authorization", "") + r.headers.get("x-api-key", "")
            for r in llm_server.requests]
    assert any(OPENAI_KEY in s for s in sent) and any(ANTHROPIC_KEY in s for s in sent)
    assert any("rejected the API key" in text for text in outputs)
    # ...but written nowhere
    files = [p for root in (folder, state) for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"events.jsonl", "exchanges.jsonl", "progress_demo.json", "notepad_demo.md"} <= names
    for path in files:
        data = path.read_bytes()
        for key in KEYS:
            assert key.encode() not in data, f"{key} in {path}"
    for text in outputs:
        for key in KEYS:
            assert key not in text
