"""MCP tools of cognitive steps: real stdio MCP servers (tests/mcp_server.py, the ``mcp`` SDK)
started by ``specs run``, a model (tests/llm_server.py) calling their tools, rule 1.11 before
the run, ``tool-called`` events, and no server process left behind."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_server import (
    LlmServer,
    Reply,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from specs import events as ev
from specs.engine.runner import Runner, RunOptions
from specs.engine.state import RunState
from specs.llm.agent import make_llm_executor, summarize_arguments
from specs.llm.mcp import McpConfigError, McpHub, find_servers, offered_name, verify
from specs.llm.providers import provider_from_settings
from specs.spec.load import load_spec
from specs.spec.validate import validate

SERVER = Path(__file__).with_name("mcp_server.py")

HEAD = """\
[meta]
goal_descriptor = "demo"

[goal]
description = "Answer a question with the help of a calculator"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Compute"

[[tasks.steps]]
id = 1
description = "Add two and three with the calculator"
expected_output = "the sum"
critical_flag = true
"""


def server_table(name: str = "calc", **env: str) -> str:
    lines = [f'[mcp_tools.config.{name}]', f"command = {json.dumps(sys.executable)}",
             f"args = [{json.dumps(str(SERVER))}]"]
    if env:
        lines.append("env = { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in env.items())
                     + " }")
    return "\n".join(lines) + "\n"


def mcp_section(required: list[str] = (), recommended: list[str] = (),  # type: ignore[assignment]
                optional: list[str] = (), halt: bool = True) -> str:  # type: ignore[assignment]
    return textwrap.dedent(f"""
        [mcp_tools]
        required = {json.dumps(list(required))}
        recommended = {json.dumps(list(recommended))}
        optional = {json.dumps(list(optional))}

        [mcp_tools.verification]
        halt_if_required_missing = {str(halt).lower()}
        """)


def write(tmp_path: Path, *parts: str) -> Path:
    folder = tmp_path / "demo"
    folder.mkdir(exist_ok=True)
    (folder / "parameters_demo.toml").write_text(HEAD + "".join(parts), encoding="utf-8")
    return folder


def cli(*args: str | os.PathLike[str], env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SPECS_", "OPENAI_", "ANTHROPIC_", "MCP_"))}
    base.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "specs", *map(str, args)], env=base,
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def json_events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not reaped) is not running
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(") ")[-1].startswith("Z"))


def pids(pid_file: Path) -> list[int]:
    return [int(x) for x in pid_file.read_text().split()] if pid_file.is_file() else []


@pytest.fixture
def guard() -> Iterator[None]:
    """A hang guard: the test fails instead of hanging."""
    def stop(signum: int, frame: Any) -> None:
        raise TimeoutError("the test hung")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(90)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- the acceptance test: a cognitive step calls a real MCP server's tool ------------------------


def test_cognitive_step_calls_the_mcp_tool(llm_server: LlmServer, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    folder = write(tmp_path, mcp_section(required=["calc"]),
                   server_table(MCP_PID_FILE=str(pid_file)))
    llm_server.script(
        openai_chat(None, tool_calls=[("c1", "calc__add", {"a": 2, "b": 3})]),
        openai_chat(None, tool_calls=[("c2", "calc__lookup", {"key": "omega"})]),
        openai_chat("2 + 3 = 5"))
    state = tmp_path / "state"
    done = cli("run", folder, "--json", "--state-dir", state, "--run-id", "r1",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    posts = llm_server.posts
    offered = {t["function"]["name"] for t in posts[0].body["tools"]}
    assert {"calc__add", "calc__lookup", "calc__boom", "read_file", "run_command"} <= offered
    add_spec = next(t["function"] for t in posts[0].body["tools"]
                    if t["function"]["name"] == "calc__add")
    assert add_spec["parameters"]["required"] == ["a", "b"]
    # the MCP server's answers went back to the model
    answers = {m["tool_call_id"]: m["content"] for m in posts[2].body["messages"]
               if m["role"] == "tool"}
    assert answers == {"c1": "5", "c2": "last letter"}
    # every tool call is an event, in the log and on the JSON stream
    logged = list(ev.read_events(state / "runs" / "r1" / "events.jsonl"))
    calls = [e for e in logged if isinstance(e, ev.ToolCalled)]
    assert [(c.tool, c.server, c.ok, c.step, c.attempt) for c in calls] == [
        ("calc__add", "calc", True, "1.1", 1), ("calc__lookup", "calc", True, "1.1", 1)]
    assert json.loads(calls[0].arguments) == {"a": 2, "b": 3}
    assert [e["tool"] for e in json_events(done.stdout) if e["event"] == "tool-called"] == [
        "calc__add", "calc__lookup"]
    # rule 1.11 recorded, in the log and in the progress file
    progress = json.loads((folder / "progress_demo.json").read_text())
    record = progress["mcp_tools_verification"]
    assert record["verification_status"] == "PASS"
    assert record["required_tools"] == {"total": 1, "verified": ["calc"], "missing": []}
    assert sorted(record["available_tools"]["calc"]) == ["add", "boom", "die", "lookup", "wait"]
    # replaying the log rebuilds the same state (the new events do not break RunState)
    spec = load_spec(folder).require()
    replayed = RunState(spec)
    for event in logged:
        replayed.apply(event)
    assert replayed.status == "completed" and replayed.mcp_verification is not None
    # the server was stopped: no process left
    started = pids(pid_file)
    assert len(started) == 1 and not alive(started[0])


def test_tool_errors_go_back_to_the_model(llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(recommended=["calc"]), server_table())
    llm_server.script(
        openai_chat(None, tool_calls=[("c1", "calc__boom", {"reason": "testing"}),
                                      ("c2", "calc__lookup", {"key": "zeta"}),
                                      ("c3", "calc__add", {"a": "two"})]),
        openai_chat("I could not compute it, but here is 5"))
    done = cli("run", folder, "--json", "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    answers = {m["tool_call_id"]: m["content"] for m in llm_server.posts[1].body["messages"]
               if m["role"] == "tool"}
    assert all(text.startswith("ERROR:") for text in answers.values()), answers
    assert "zeta" in answers["c2"]
    assert "a" in answers["c3"]
    calls = [e for e in json_events(done.stdout) if e["event"] == "tool-called"]
    assert [(c["tool"], c["ok"]) for c in calls] == [
        ("calc__boom", False), ("calc__lookup", False), ("calc__add", False)]
    assert all(c["error"] for c in calls)


# -- rule 1.11 before the run ---------------------------------------------------------------------


def test_required_server_not_configured_stops_before_any_request(
        llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(required=["tavily-search"], recommended=["calc"]),
                   server_table())
    done = cli("run", folder, "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "tavily-search" in lines[0] and "not configured" in lines[0]
    assert "[mcp_tools.config.tavily-search]" in lines[0]
    assert llm_server.requests == []
    assert not (folder / "progress_demo.json").exists()


def test_required_missing_with_halt_off_is_a_warning(
        llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(required=["tavily-search"], halt=False))
    llm_server.script(openai_chat("5"))
    done = cli("run", folder, "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    assert "specs: warning: required MCP server not available" in done.stderr
    record = json.loads((folder / "progress_demo.json").read_text())["mcp_tools_verification"]
    assert record["verification_status"] == "FAIL"
    assert record["required_tools"]["missing"] == ["tavily-search"]


def test_recommended_missing_warns_and_the_run_goes_on(
        llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(required=["calc"], recommended=["github"],
                                         optional=["context7"]), server_table())
    llm_server.script(openai_chat("5"))
    done = cli("run", folder, "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("specs: warning")]
    assert len(warnings) == 1 and "github" in warnings[0] and "not configured" in warnings[0]
    assert "context7" not in done.stderr  # optional: listed, never a warning
    record = json.loads((folder / "progress_demo.json").read_text())["mcp_tools_verification"]
    assert record["verification_status"] == "PASS"
    assert record["recommended_tools"]["missing"] == ["github"]
    assert record["optional_tools"] == {"total": 1, "listed": ["context7"], "started": []}


def test_server_that_crashes_on_start(llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(required=["calc"]),
                   server_table(MCP_CRASH="fatal: CALC_TOKEN is invalid"))
    done = cli("run", folder, "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "'calc'" in lines[0] and "exited during" in lines[0]
    assert "CALC_TOKEN is invalid" in lines[0]  # the server's own stderr, to act on
    assert llm_server.requests == []


def test_command_not_found(llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(required=["calc"]),
                   '[mcp_tools.config.calc]\ncommand = "specs-no-such-mcp-server"\n')
    done = cli("run", folder, "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 2
    assert "command not found" in done.stderr and "specs-no-such-mcp-server" in done.stderr


def test_a_relative_spec_path_starts_the_server_in_the_spec_folder(
        llm_server: LlmServer, tmp_path: Path) -> None:
    # `specs run demo` from the folder above: the server's folder is the spec folder, once
    folder = write(tmp_path, mcp_section(required=["calc"]),
                   f"[mcp_tools.config.calc]\ncommand = {json.dumps(sys.executable)}\n"
                   'args = ["mcp_server.py"]\n')
    (folder / "mcp_server.py").write_text(SERVER.read_text(), encoding="utf-8")
    llm_server.script(openai_chat(None, tool_calls=[("c1", "calc__add", {"a": 2, "b": 3})]),
                      openai_chat("5"))
    done = cli("run", "demo", "--state-dir", "state", cwd=tmp_path,
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    answers = [m["content"] for m in llm_server.posts[1].body["messages"] if m["role"] == "tool"]
    assert answers == ["5"]


def test_a_missing_working_folder_says_so(llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(required=["calc"]),
                   server_table() + 'cwd = "no-such-folder"\n')
    done = cli("run", "demo", "--state-dir", "state", cwd=tmp_path,
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"its working folder {folder / 'no-such-folder'} does not exist" in lines[0]
    assert "command not found" not in lines[0]


NPM_SERVER = "@modelcontextprotocol/server-filesystem@2026.8.31"


@pytest.fixture(scope="session")
def npm_filesystem_server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The filesystem MCP server from npm, installed once per session (skipped without npm
    or without the registry)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    where = tmp_path_factory.mktemp("npm")
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", NPM_SERVER],
                          cwd=where, capture_output=True, text=True, timeout=300)
    binary = where / "node_modules" / ".bin" / "mcp-server-filesystem"
    if done.returncode != 0 or not binary.exists():
        pytest.skip(f"npm install {NPM_SERVER} failed: {done.stderr.strip()[-200:]}")
    return binary


def test_an_npm_server_with_a_relative_folder_argument(
        llm_server: LlmServer, tmp_path: Path, npm_filesystem_server: Path) -> None:
    # args = ["."]: the folder the server may serve is its working folder, the spec folder
    folder = write(tmp_path, mcp_section(required=["fs"]),
                   f"[mcp_tools.config.fs]\ncommand = {json.dumps(str(npm_filesystem_server))}"
                   '\nargs = ["."]\n')
    llm_server.script(openai_chat(None, tool_calls=[("c1", "fs__list_allowed_directories", {}),
                                                    ("c2", "fs__read_text_file",
                                                     {"path": "parameters_demo.toml"})]),
                      openai_chat("read it"))
    done = cli("run", "demo", "--state-dir", "state", cwd=tmp_path,
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    allowed, text = (m["content"] for m in llm_server.posts[1].body["messages"]
                     if m["role"] == "tool")
    assert str(folder.resolve()) in allowed
    assert "goal_descriptor" in text


def test_a_slow_tool_is_cut_by_the_attempt_timeout(llm_server: LlmServer,
                                                   tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(required=["calc"]), server_table())
    text = (folder / "parameters_demo.toml").read_text()
    (folder / "parameters_demo.toml").write_text(text.replace(
        "critical_flag = true\n", "critical_flag = true\nmax_retries = 0\ntimeout_seconds = 1\n",
        1), encoding="utf-8")
    llm_server.script(openai_chat(None, tool_calls=[("c1", "calc__wait", {"seconds": 60})]))
    done = cli("run", folder, "--json", "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 1, done.stderr
    ended = [e for e in json_events(done.stdout) if e["event"] == "attempt-ended"]
    assert ended[0]["failure_reason"] == "timed out after 1 s (running the tool calc__wait)"
    assert ended[0]["transient"] and ended[0]["duration_ms"] < 2000


def test_interrupted_run_stops_its_servers(llm_server: LlmServer, tmp_path: Path,
                                           guard: None) -> None:
    pid_file = tmp_path / "pids"
    folder = write(tmp_path, mcp_section(required=["calc"]),
                   server_table(MCP_PID_FILE=str(pid_file)))
    llm_server.script(Reply.hang(60))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPECS_", "OPENAI_"))}
    base.update(OPENAI_BASE_URL=llm_server.openai_url, NO_COLOR="1", TERM="dumb")
    process = subprocess.Popen([sys.executable, "-m", "specs", "run", folder, "--no-input",
                                "--state-dir", str(tmp_path / "state")], env=base,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not llm_server.posts:  # the server runs and the model is being asked
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        started = pids(pid_file)
        assert len(started) == 1 and alive(started[0])
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert not alive(started[0])


def test_interrupted_during_start_up_leaves_no_server(llm_server: LlmServer, tmp_path: Path,
                                                     guard: None) -> None:
    pid_file = tmp_path / "pids"
    folder = write(tmp_path, mcp_section(required=["calc"]),
                   server_table(MCP_PID_FILE=str(pid_file), MCP_SLOW_START="60"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPECS_", "OPENAI_"))}
    base.update(OPENAI_BASE_URL=llm_server.openai_url, NO_COLOR="1", TERM="dumb")
    process = subprocess.Popen([sys.executable, "-m", "specs", "run", folder, "--no-input",
                                "--state-dir", str(tmp_path / "state")], env=base,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not pids(pid_file):  # the server process exists, and is not answering
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert not alive(pids(pid_file)[0])
    assert llm_server.requests == []


# -- the hub in-process: two steps at once share one server ---------------------------------------


def test_concurrent_steps_share_one_session(llm_server: LlmServer, tmp_path: Path,
                                            guard: None) -> None:
    pid_file = tmp_path / "pids"
    two = HEAD.replace("[execution]\n", "[execution]\nparallel_enabled = true\n") + """
[[tasks.steps]]
id = 2
description = "Look omega up"
expected_output = "its meaning"
critical_flag = true
depends_on = []
"""
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "parameters_demo.toml").write_text(
        two + mcp_section(required=["calc"]) + server_table(MCP_PID_FILE=str(pid_file)))

    def answer(recorded: Any) -> dict[str, Any]:
        messages = recorded.body["messages"]
        user = "\n".join(str(m["content"]) for m in messages if m["role"] != "tool")
        done = [m for m in messages if m["role"] == "tool"]
        if done:
            return openai_chat(f"result {done[-1]['content']}")
        if "## Step 1.2" in user:
            return openai_chat(None, tool_calls=[("l1", "calc__lookup", {"key": "omega"})])
        return openai_chat(None, tool_calls=[("a1", "calc__add", {"a": 20, "b": 22})])

    llm_server.handler = answer
    loaded = load_spec(folder)
    spec = loaded.require()
    events: list[ev.Event] = []
    runner = Runner(loaded, RunOptions(state_dir=tmp_path / "state"),
                    subscribers=[lambda e, s: events.append(e)])
    provider = provider_from_settings(spec.llm, {"OPENAI_BASE_URL": llm_server.openai_url})
    hub = McpHub.for_spec(loaded)
    runner.executors["cognitive"] = make_llm_executor(
        provider, spec=spec, loaded=loaded, state_getter=lambda: runner.state,
        emit=runner.emit, mcp=hub)

    async def go() -> None:
        async with hub:
            assert spec.mcp_tools is not None
            checked = await verify(spec.mcp_tools, hub)
            assert checked.fatal is None
            await runner.start()
        await provider.aclose()

    asyncio.run(go())
    outputs = {e.step: e.output for e in events if isinstance(e, ev.AttemptEnded)}
    assert outputs == {"1.1": "result 42", "1.2": "result last letter"}
    assert len(pids(pid_file)) == 1  # one server for both steps
    assert not alive(pids(pid_file)[0])


def test_server_that_dies_mid_run_gives_tool_errors(tmp_path: Path, guard: None) -> None:
    folder = write(tmp_path, mcp_section(required=["calc"]), server_table())
    loaded = load_spec(folder)

    async def go() -> list[tuple[bool, str]]:
        async with McpHub.for_spec(loaded) as hub:
            await hub.start(["calc"])
            first = await hub.call("calc__add", {"a": 1, "b": 1})
            died = await hub.call("calc__die", {})
            after = await hub.call("calc__add", {"a": 1, "b": 1})
            return [(r.ok, r.content) for r in (first, died, after)]

    first, died, after = asyncio.run(go())
    assert first == (True, "2")
    assert not died[0] and "'calc' exited" in died[1] and "dying on purpose" in died[1]
    assert not after[0] and "calc" in after[1]


# -- tool-called for the built-in tools --------------------------------------------------------


def test_builtin_tool_calls_are_events(llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path)
    llm_server.script(
        openai_chat(None, tool_calls=[
            ("c1", "write_file", {"path": "sum.txt", "content": "5\n" * 200}),
            ("c2", "run_command", {"command": "echo sk-abcdefghijklmnopqrstuv"}),
            ("c3", "read_file", {"path": "../outside.txt"})]),
        openai_chat("5"))
    state = tmp_path / "state"
    done = cli("run", folder, "--state-dir", state, "--run-id", "b1",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    calls = [e for e in ev.read_events(state / "runs" / "b1" / "events.jsonl")
             if isinstance(e, ev.ToolCalled)]
    assert [(c.tool, c.server, c.ok) for c in calls] == [
        ("write_file", None, True), ("run_command", None, True), ("read_file", None, False)]
    assert all(c.step == "1.1" and c.method == "primary" and c.attempt == 1 for c in calls)
    assert len(calls[0].arguments) <= 300 and "sum.txt" in calls[0].arguments
    assert "sk-abcdef" not in calls[1].arguments and "***" in calls[1].arguments
    assert calls[2].error and "outside" in calls[2].error
    # the plain console names the failed call
    assert "tool read_file failed" in done.stdout + done.stderr


def test_argument_summary_masks_secrets_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-1234567890")
    text = summarize_arguments({"query": "use tok-1234567890 now", "api_key": "abc",
                                "headers": {"Authorization": "Bearer xyz"},
                                "long": "x" * 5000})
    assert "tok-1234567890" not in text and "abc" not in text and "xyz" not in text
    assert len(text) <= 300


# -- where servers are defined ------------------------------------------------------------------


def test_offered_names_follow_the_provider_rule() -> None:
    assert offered_name("tavily-search", "search") == "tavily-search__search"
    assert offered_name("my server", "get.page") == "my_server__get_page"
    long = offered_name("s" * 40, "t" * 40)
    assert len(long) == 64
    assert offered_name("s" * 40, "t" * 40, {long}) != long
    assert len(offered_name("s" * 40, "t" * 40, {long})) == 64


def test_json_file_env_var_and_precedence(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write(tmp_path, mcp_section(required=["calc", "files", "keyed"]),
                   server_table("calc"))
    (folder / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "calc": {"command": "ignored-because-the-spec-defines-calc"},
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem",
                                             "${HOME}", "${NOPE:-fallback}"]},
        "keyed": {"command": "srv", "env": {"API_KEY": "${SPECS_TEST_UNSET_KEY}"}}}}))
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"mcpServers": {"files": {"command": "from-env-file"}}}))
    monkeypatch.delenv("SPECS_TEST_UNSET_KEY", raising=False)
    monkeypatch.setenv("HOME", "/home/tester")
    servers, broken = find_servers(load_spec(folder), dict(os.environ))
    assert servers["calc"].command == sys.executable
    assert "parameters_demo.toml:" in servers["calc"].origin
    assert servers["files"].args == ("-y", "@modelcontextprotocol/server-filesystem",
                                     "/home/tester", "fallback")
    assert servers["files"].cwd == folder
    assert "SPECS_TEST_UNSET_KEY" in broken["keyed"] and "not set" in broken["keyed"]
    env = {**os.environ, "SPECS_MCP_CONFIG": str(other)}
    servers, _ = find_servers(load_spec(folder), env)
    assert servers["files"].command == "from-env-file"  # SPECS_MCP_CONFIG before .mcp.json


def test_bad_json_file_is_one_line_with_its_position(llm_server: LlmServer,
                                                     tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(recommended=["calc"]))
    (folder / ".mcp.json").write_text('{"mcpServers": {\n  "calc": {"command": }\n}}')
    with pytest.raises(McpConfigError, match=r"\.mcp\.json:2:\d+: not valid JSON"):
        find_servers(load_spec(folder), {})
    done = cli("run", folder, "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and ".mcp.json:2:" in lines[0], done.stderr
    assert llm_server.requests == []


def test_validate_reports_unconfigured_and_badly_typed_servers(tmp_path: Path) -> None:
    folder = write(tmp_path, mcp_section(required=["tavily-search"], recommended=["github"]),
                   '[mcp_tools.config.calc]\ncommand = "x"\nargs = "not a list"\n\n'
                   '[mcp_tools.config.postgres]\nconnection_string = "postgresql://db"\n')
    found = {d.code: d for d in validate(load_spec(folder))}
    assert found["W-MCP-UNCONFIGURED"].message.startswith("required MCP server 'tavily-search'")
    assert found["I-MCP-UNCONFIGURED"].message.startswith("recommended MCP server 'github'")
    bad = found["E-MCP-CONFIG"]
    assert "args must be a list of strings" in bad.message and bad.location.line > 0
    # a settings-only table (no command) is not a server definition and not an error
    assert sum(d.code == "E-MCP-CONFIG" for d in validate(load_spec(folder))) == 1
