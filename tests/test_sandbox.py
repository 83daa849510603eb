"""What the agent's tools may not touch (specs.llm.sandbox): the run's state folder (hidden)
and the spec's own files (read-only), through the built-in tools and through a real run whose
state folder lies in the workspace; and the bubblewrap confinement of ``run_command`` (skipped
where bwrap is not installed or cannot run)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from llm_server import (
    LlmServer,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from specs import events as ev
from specs.engine.runner import Runner, RunOptions
from specs.llm.agent import make_llm_executor
from specs.llm.providers import provider_from_settings
from specs.llm.sandbox import Protected, bwrap_problem, spec_files
from specs.llm.tools import Workspace, call_tool
from specs.spec.load import load_spec

SPEC = """\
[meta]
goal_descriptor = "demo"

[goal]
description = "Greet the team"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Greet"

[[tasks.steps]]
id = 1
description = "Write hello.txt"
expected_output = "a greeting"
critical_flag = true
max_retries = 0
"""


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A spec folder that is also the workspace, with a state folder inside (``specs run .``)."""
    spec = tmp_path / "demo"
    (spec / ".specs" / "runs" / "r1").mkdir(parents=True)
    (spec / "parameters_demo.toml").write_text(SPEC, encoding="utf-8")
    (spec / ".specs" / "runs" / "r1" / "events.jsonl").write_text('{"seq": 1}\n')
    (spec / "notes.txt").write_text("mine\n")
    (spec / "link_to_state").symlink_to(".specs/runs")
    return spec


def protected_ws(folder: Path, **kwargs: Any) -> Workspace:
    return Workspace(folder, protected=Protected.for_run(load_spec(folder),
                                                         folder / ".specs"), **kwargs)


def call(ws: Workspace, name: str, arguments: dict[str, Any]) -> Any:
    return asyncio.run(call_tool(ws, name, arguments))


@pytest.mark.parametrize("path", [".specs/runs/r1/events.jsonl", ".specs",
                                  "link_to_state/r1/events.jsonl",
                                  f"{'{root}'}/.specs/runs/r1/events.jsonl"])
def test_the_state_folder_is_neither_read_nor_written(folder: Path, path: str) -> None:
    ws = protected_ws(folder)
    path = path.replace("{root}", str(folder))
    for name, arguments in (("read_file", {"path": path}), ("list_files", {"path": path}),
                            ("write_file", {"path": path, "content": "{}"})):
        result = call(ws, name, arguments)
        assert not result.ok and "the run's state folder" in result.content, (name, result)
    assert (folder / ".specs" / "runs" / "r1" / "events.jsonl").read_text() == '{"seq": 1}\n'


def test_the_state_folder_is_left_out_of_listings(folder: Path) -> None:
    listed = call(protected_ws(folder), "list_files", {}).content.splitlines()
    assert "notes.txt" in listed and "parameters_demo.toml" in listed
    assert not any(line.startswith(".specs") for line in listed)


def test_the_spec_files_are_read_never_written(folder: Path) -> None:
    ws = protected_ws(folder)
    assert call(ws, "read_file", {"path": "parameters_demo.toml"}).content == SPEC
    for target in ("parameters_demo.toml", "progress_demo.json", "notepad_demo.md"):
        written = call(ws, "write_file", {"path": target, "content": "x"})
        assert not written.ok and "the spec's own files" in written.content
    assert (folder / "parameters_demo.toml").read_text() == SPEC
    assert not (folder / "progress_demo.json").exists()
    assert call(ws, "write_file", {"path": "notes.txt", "content": "new\n"}).ok


def test_spec_files_lists_what_the_run_reads_and_writes(folder: Path) -> None:
    (folder / "spec_demo.md").write_text("# Demo\n", encoding="utf-8")
    found = {p.name for p in spec_files(load_spec(folder))}
    assert {"parameters_demo.toml", "spec_demo.md", "progress_demo.json",
            "notepad_demo.md"} <= found


def test_a_run_with_its_state_in_the_workspace_keeps_it(llm_server: LlmServer,
                                                        folder: Path) -> None:
    # the agent tries to rewrite the run's log, lock and parameters file: all refused
    state = folder / ".specs"
    targets = [".specs/runs/r2/events.jsonl", ".specs/runs/r2/lock", "parameters_demo.toml"]
    llm_server.script(openai_chat(None, tool_calls=[
        (f"c{i}", "write_file", {"path": path, "content": "{}"})
        for i, path in enumerate(targets)]), openai_chat("Hello, team!"))
    loaded = load_spec(folder)
    spec = loaded.require()
    events: list[ev.Event] = []
    runner = Runner(loaded, RunOptions(state_dir=state, run_id="r2"),
                    subscribers=[lambda e, s: events.append(e)])
    provider = provider_from_settings(spec.llm, {"OPENAI_BASE_URL": llm_server.openai_url})
    runner.executors["cognitive"] = make_llm_executor(
        provider, spec=spec, loaded=loaded, state_getter=lambda: runner.state,
        emit=runner.emit, state_dir=state)

    async def go() -> None:
        try:
            await runner.start()
        finally:
            await provider.aclose()

    asyncio.run(go())
    calls = [e for e in events if isinstance(e, ev.ToolCalled)]
    assert [c.ok for c in calls] == [False, False, False]
    assert (folder / "parameters_demo.toml").read_text() == SPEC
    logged = list(ev.read_events(state / "runs" / "r2" / "events.jsonl"))
    assert logged and logged[-1].name == "run-ended"  # the log is the engine's, whole
    assert [json.loads(line)["seq"] for line in (state / "runs" / "r2" / "events.jsonl")
            .read_text().splitlines()] == list(range(1, len(logged) + 1))


def test_bad_sandbox_settings_are_one_line(folder: Path) -> None:
    with pytest.raises(ValueError, match="sandbox must be one of none, bwrap"):
        Workspace.from_config(folder, {"sandbox": "docker"})
    with pytest.raises(ValueError, match='network = false needs sandbox = "bwrap"'):
        Workspace.from_config(folder, {"network": False})


# -- bubblewrap ---------------------------------------------------------------------------------

needs_bwrap = pytest.mark.skipif(bwrap_problem() is not None,
                                 reason=str(bwrap_problem()))


def run(ws: Workspace, command: str) -> Any:
    return asyncio.run(ws.run_command(command))


@needs_bwrap
def test_bwrap_confines_what_commands_write_and_see(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("theirs\n")
    plain = protected_ws(folder)
    boxed = Workspace.from_config(folder, {"sandbox": "bwrap"}, protected=plain.protected)
    # without the sandbox a command reaches everything (what docs/security.md says)
    assert run(plain, "cat .specs/runs/r1/events.jsonl").content.endswith('{"seq": 1}')
    line = (f"echo x > parameters_demo.toml; echo x > {outside}; "
            "cat .specs/runs/r1/events.jsonl; echo x > .specs/runs/r1/events.jsonl; "
            "echo ok > made.txt; echo t > /tmp/specs-sandbox-probe; ls -A .specs")
    result = run(boxed, line)
    assert "Read-only file system" in result.content
    assert (folder / "parameters_demo.toml").read_text() == SPEC
    assert outside.read_text() == "theirs\n"
    assert (folder / ".specs" / "runs" / "r1" / "events.jsonl").read_text() == '{"seq": 1}\n'
    assert (folder / "made.txt").read_text() == "ok\n"  # the workspace stays writable
    assert not Path("/tmp/specs-sandbox-probe").exists()  # a private /tmp


@needs_bwrap
def test_bwrap_without_network(folder: Path, llm_server: LlmServer) -> None:
    probe = (f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', "
             f"{llm_server.port}), 2); print('connected')\"")
    open_ws = Workspace.from_config(folder, {"sandbox": "bwrap"})
    closed = Workspace.from_config(folder, {"sandbox": "bwrap", "network": False})
    assert "connected" in run(open_ws, probe).content
    result = run(closed, probe)
    assert not result.ok and "connected" not in result.content
    with socket.create_connection(("127.0.0.1", llm_server.port), 2):
        pass  # the server was there all along


def test_a_missing_bwrap_is_one_line(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap_problem.cache_clear()
    monkeypatch.setenv("PATH", str(folder))  # nothing to find there
    try:
        with pytest.raises(ValueError, match=r"bwrap is not installed .*apt-get install "
                                             r"bubblewrap"):
            Workspace.from_config(folder, {"sandbox": "bwrap"})
    finally:
        monkeypatch.undo()
        bwrap_problem.cache_clear()
