"""The built-in tools of cognitive steps (docs/prompts.md "Tools"): confinement and limits."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from specs.llm.tools import (
    TOOL_NAMES,
    OutsideWorkspace,
    ToolResult,
    Workspace,
    call_tool,
    command_names,
    tool_specs,
)


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("top secret")
    return folder


@pytest.fixture()
def root(tmp_path: Path, outside: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "mod.py").write_text("print('hi')\n")
    (ws / "src" / "main.py").write_text("import pkg\n")
    (ws / "README.md").write_text("# readme\n")
    (ws / "link_to_etc").symlink_to("/etc")
    (ws / "link_out").symlink_to(outside)
    (ws / "link_in").symlink_to("src/pkg")  # inside, pointing inside
    (ws / "src" / "up").symlink_to("../..")  # relative, climbs out
    (ws / "chain1").symlink_to("chain2")  # a chain that ends outside
    (ws / "chain2").symlink_to("chain3")
    (ws / "chain3").symlink_to(outside / "secret.txt")
    (ws / "good1").symlink_to("good2")  # a chain that stays inside
    (ws / "good2").symlink_to(ws / "README.md")
    (ws / "loop").symlink_to("loop")
    return ws


@pytest.fixture()
def ws(root: Path) -> Workspace:
    return Workspace(root, command_timeout=5.0, max_output_bytes=4_000,
                     max_read_bytes=10_000)


def call(ws: Workspace, name: str, arguments: Any) -> ToolResult:
    return asyncio.run(call_tool(ws, name, arguments))


# --- paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "../outside/secret.txt", "src/../../outside/secret.txt", "..", "/etc/passwd",
    "link_to_etc/passwd", "link_out/secret.txt", "src/up/outside/secret.txt",
    "chain1", "loop", "",
])
def test_paths_that_leave_the_workspace_are_refused(ws: Workspace, path: str) -> None:
    result = ws.read_file(path)
    assert not result.ok and result.content.startswith("refused:"), result
    assert "top secret" not in result.content and "root:" not in result.content
    with pytest.raises(OutsideWorkspace):
        ws.resolve(path)


def test_refusals_say_why(ws: Workspace) -> None:
    assert "'..' leads out of the workspace" in ws.read_file("../x").content
    assert "absolute path outside the workspace" in ws.read_file("/etc/passwd").content
    assert "link_to_etc is a symlink to /etc, outside the workspace" in ws.read_file(
        "link_to_etc/passwd").content
    assert "too many levels of symbolic links" in ws.read_file("loop").content


def test_paths_inside_are_fine(ws: Workspace, root: Path) -> None:
    assert ws.read_file("link_in/mod.py") == ToolResult(True, "print('hi')\n")
    assert ws.read_file("good1").content == "# readme\n"
    assert ws.read_file("src/../README.md").ok
    assert ws.read_file(str(root / "README.md")).ok  # absolute, inside
    assert ws.resolve("link_in/mod.py") == (root / "src" / "pkg" / "mod.py").resolve()
    assert ws.resolve("new/file.txt") == root.resolve() / "new" / "file.txt"


def test_writes_outside_are_refused(ws: Workspace, outside: Path, tmp_path: Path) -> None:
    for path in ["../evil.txt", str(tmp_path / "evil.txt"), "link_out/evil.txt",
                 "link_to_etc/evil.conf", "src/up/evil.txt", "chain1"]:
        result = ws.write_file(path, "pwned")
        assert not result.ok and result.content.startswith("refused:"), (path, result)
    assert not (tmp_path / "evil.txt").exists() and not (outside / "evil.txt").exists()
    assert (outside / "secret.txt").read_text() == "top secret"


def test_writes_create_folders_inside(ws: Workspace, root: Path) -> None:
    result = ws.write_file("build/deep/out.txt", "hello é")
    assert result == ToolResult(True, "wrote 8 bytes to build/deep/out.txt")
    assert (root / "build" / "deep" / "out.txt").read_text(encoding="utf-8") == "hello é"
    assert ws.write_file("link_in/new.py", "x = 1\n").ok  # through a link inside
    assert (root / "src" / "pkg" / "new.py").is_file()
    assert not ws.write_file("src", "x").ok  # a folder
    small = Workspace(root, max_write_bytes=10)
    assert "more than the 10" in small.write_file("big.txt", "x" * 11).content


def test_reads_are_capped_and_say_what_is_left(ws: Workspace, root: Path) -> None:
    (root / "big.txt").write_text("0123456789" * 3_000)
    result = ws.read_file("big.txt", max_bytes=100)
    assert result.ok and result.content.startswith("0123456789" * 10 + "\n[... ")
    assert "29,900 more bytes not shown; the file has 30,000 bytes: read on with offset=100" \
        in result.content
    assert ws.read_file("big.txt", max_bytes=100, offset=29_990).content == "0123456789"
    capped = ws.read_file("big.txt", max_bytes=1_000_000)  # never above the workspace's cap
    assert "20,000 more bytes not shown" in capped.content


def test_reads_refuse_folders_binaries_and_fifos(ws: Workspace, root: Path) -> None:
    assert "is a directory" in ws.read_file("src").content
    (root / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    assert "binary file (30 bytes)" in ws.read_file("blob.bin").content
    os.mkfifo(root / "pipe")
    start = time.monotonic()
    result = ws.read_file("pipe")  # would block forever if opened for a plain read
    assert not result.ok and "not a regular file" in result.content
    assert time.monotonic() - start < 2
    assert "no such file" in ws.read_file("missing.txt").content.lower()


def test_list_files(ws: Workspace) -> None:
    listing = ws.list_files().content.splitlines()
    assert "README.md" in listing and "src/" in listing and "src/pkg/mod.py" in listing
    assert listing == sorted(listing)
    assert not any("secret" in line or "passwd" in line for line in listing)  # links not walked
    assert ws.list_files("src", pattern="*.py").content.splitlines() == [
        "src/main.py", "src/pkg/mod.py"]
    assert ws.list_files(pattern="src/pkg/*").content.splitlines() == [
        "src/pkg/mod.py"]
    assert ws.list_files(pattern="*.rs").content == "(no entries in . matching '*.rs')"
    assert not ws.list_files("../outside").ok
    assert not ws.list_files("link_out").ok
    assert ws.list_files("README.md").content == "README.md"
    capped = ws.list_files(max_entries=2).content.splitlines()
    assert len(capped) == 3 and capped[-1].startswith("[... ") and "more entries" in capped[-1]


# --- commands -----------------------------------------------------------------------------------


def run(ws: Workspace, command: str, **kwargs: Any) -> ToolResult:
    return asyncio.run(ws.run_command(command, **kwargs))


def test_run_command_in_the_workspace(ws: Workspace, root: Path) -> None:
    result = run(ws, "pwd; echo oops >&2")
    assert result.ok
    assert result.content == f"exit code 0\n--- stdout ---\n{root.resolve()}\n" \
                             "--- stderr ---\noops"
    failed = run(ws, "exit 3")
    assert not failed.ok and failed.content.startswith("exit code 3")


@pytest.mark.parametrize(("command", "names"), [
    ("ls -la", ["ls"]),
    ("ls; rm -rf /", ["ls", "rm"]),
    ("a && b || c | d & e", ["a", "b", "c", "d", "e"]),
    ("echo $(rm x)", ["rm", "echo"]),
    ('echo "$(curl x)"', ["curl", "echo"]),
    ("echo `wget y`", ["wget", "echo"]),
    ("FOO=1 python x.py", ["python"]),
    ("env -i rm x", ["env", "rm"]),
    ("xargs -n 1 rm", ["xargs", "rm"]),
    ("sh -c 'curl x | bash'", ["sh", "curl", "bash"]),
    ("eval rm x", ["eval", "rm"]),
    ("echo hi > out.txt 2>&1", ["echo"]),
    ("2>/dev/null rm x", ["rm"]),
    ("echo 'a; rm'", ["echo"]),
    ("echo $((1 + 2))", ["echo"]),
    ("for i in 1 2; do rm $i; done", ["rm"]),
    ("if true; then ls; fi", ["true", "ls"]),
    ("(cd sub && make)", ["cd", "make"]),
    ("cat <(curl x)", ["cat", "curl"]),
    ("\\rm x", ["rm"]),
    ("$CMD x", ["$CMD"]),
])
def test_command_names(command: str, names: list[str]) -> None:
    assert command_names(command) == names


def test_allow_and_deny(root: Path) -> None:
    ws = Workspace(root, allow=["python*", "ls", "cat", "echo"], deny=["rm", "curl", "wget"])
    assert run(ws, "ls src").ok
    assert run(ws, "python3 -c 'print(1)'").ok
    assert run(ws, "cat README.md | cat").ok
    for command, why in [
        ("rm README.md", "'rm' is denied by [llm.tools] deny ('rm')"),
        ("ls; rm README.md", "'rm' is denied"),
        ("echo $(rm README.md)", "'rm' is denied"),
        ("/bin/rm README.md", "'/bin/rm' is denied"),
        ("touch x", "'touch' is not in [llm.tools] allow (python*, ls, cat, echo)"),
        ("$X README.md", "cannot be checked against the allow/deny lists"),
    ]:
        result = run(ws, command)
        assert not result.ok and result.content.startswith("refused: "), (command, result)
        assert why in result.content, (command, result)
    assert (root / "README.md").is_file() and not (root / "x").exists()
    # deny wins over allow
    both = Workspace(root, allow=["*"], deny=["rm"])
    assert not run(both, "rm README.md").ok and run(both, "ls").ok
    # an empty allow list allows nothing; no lists allow everything
    assert "empty: no commands" in run(Workspace(root, allow=[]), "ls").content
    assert run(Workspace(root), "touch y && ls y").ok


def test_from_config(root: Path) -> None:
    ws = Workspace.from_config(root, {"allow": ["ls"], "deny": ["rm"], "timeout_seconds": 3,
                                      "max_output_bytes": 100})
    assert (ws.allow, ws.deny, ws.command_timeout, ws.max_output_bytes) == (
        ["ls"], ["rm"], 3, 100)
    assert Workspace.from_config(root, None).allow is None
    with pytest.raises(ValueError, match="allow must be a list of strings"):
        Workspace.from_config(root, {"allow": "ls"})
    with pytest.raises(ValueError, match="timeout_seconds must be a positive number"):
        Workspace.from_config(root, {"timeout_seconds": -1})


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_a_timeout_kills_the_whole_group(root: Path) -> None:
    ws = Workspace(root, command_timeout=1.0)
    start = time.monotonic()
    # the shell starts a shell that starts sleep: a grandchild
    result = run(ws, "sh -c 'sleep 30 & echo $! > sleep.pid; wait' ; echo never")
    elapsed = time.monotonic() - start
    assert not result.ok and result.content.startswith("timed out after 1 s")
    assert elapsed < 10
    pid = int((root / "sleep.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the grandchild sleep survived the timeout"
    # the model may ask for less time, never for more
    assert run(ws, "sleep 5", timeout=0.2).content.startswith("timed out after 0.2 s")
    assert run(ws, "sleep 3", timeout=60).content.startswith("timed out after 1 s")


def test_output_is_capped(root: Path) -> None:
    ws = Workspace(root, max_output_bytes=1_000)
    result = run(ws, "head -c 50000 /dev/zero | tr '\\0' x")
    assert result.ok
    assert result.content.split("--- stdout ---\n")[1].count("x") == 1_000
    assert "49,000 bytes of output dropped" in result.content


def test_secrets_are_not_passed_to_commands(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret")
    monkeypatch.setenv("SPECS_HARMLESS", "visible")
    result = run(Workspace(root), "env")
    assert "SPECS_HARMLESS=visible" in result.content
    for value in ("sk-very-secret", "sk-ant-secret", "ghp-secret"):
        assert value not in result.content


# --- specs and calls ------------------------------------------------------------------------


def test_tool_specs() -> None:
    specs = tool_specs()
    assert [s["name"] for s in specs] == list(TOOL_NAMES) == [
        "read_file", "write_file", "list_files", "run_command"]
    for spec in specs:
        assert spec["description"] and spec["parameters"]["type"] == "object"
        jsonschema.Draft202012Validator.check_schema(spec["parameters"])
    specs[0]["name"] = "changed"  # a copy: the registry is not changed
    assert tool_specs()[0]["name"] == "read_file"


def test_call_tool(ws: Workspace, root: Path) -> None:
    assert call(ws, "read_file", {"path": "README.md"}) == ToolResult(True, "# readme\n")
    assert call(ws, "write_file", {"path": "a/b.txt", "content": "x"}).ok
    assert (root / "a" / "b.txt").read_text() == "x"
    assert call(ws, "list_files", {"pattern": "b.txt"}).content == "a/b.txt"
    assert call(ws, "list_files", {}).ok
    result = call(ws, "run_command", {"command": "cat a/b.txt", "timeout": 2})
    assert result.ok and "--- stdout ---\nx" in result.content
    assert not call(ws, "read_file", {"path": "../outside/secret.txt"}).ok


def test_unknown_tool(ws: Workspace) -> None:
    assert call(ws, "delete_everything", {}) == ToolResult(
        False, "unknown tool 'delete_everything'; available: read_file, write_file, "
               "list_files, run_command")


@pytest.mark.parametrize(("name", "arguments", "message"), [
    ("read_file", {}, "'path' is a required property"),
    ("read_file", {"path": 3}, "path: 3 is not of type 'string'"),
    ("read_file", {"path": "a", "max_bytes": 0}, "max_bytes: 0 is less than the minimum"),
    ("read_file", {"path": "a", "max_bytes": True}, "is not of type 'integer'"),
    ("write_file", {"path": "a"}, "'content' is a required property"),
    ("list_files", {"path": "."}, None),
    ("list_files", {"recursive": True}, "Additional properties are not allowed"),
    ("run_command", {"command": ""}, "should be non-empty"),
    ("run_command", {"command": "ls", "timeout": "soon"}, "is not of type 'number'"),
    ("run_command", ["ls"], "expected a JSON object, got list"),
    ("run_command", None, "expected a JSON object, got NoneType"),
])
def test_bad_arguments(ws: Workspace, name: str, arguments: Any, message: str | None) -> None:
    result = call(ws, name, arguments)
    if message is None:
        assert result.ok
    else:
        assert not result.ok and result.content.startswith(f"bad arguments for {name}: ")
        assert message in result.content, result.content
