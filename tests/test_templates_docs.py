"""docs/templates.md cannot drift: its catalog is what `specs templates --markdown` prints, its
quick start runs as written, and the empty-file hint names a command that exists."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import RunCli
from llm_server import LlmServer, llm_server_fixture  # noqa: F401
from specs.spec.tomlio import parse_toml
from specs.templates import discover
from specs.templates.catalog import catalog_markdown

PAGE = Path(__file__).resolve().parents[1] / "docs" / "templates.md"


def test_the_catalog_section_is_current() -> None:
    text = PAGE.read_text()
    section = text.split("<!-- catalog:begin -->\n", 1)[1].split("<!-- catalog:end -->", 1)[0]
    builtins = [t for t in discover(env={}).templates.values() if t.layer == "built-in"]
    assert section == catalog_markdown(builtins), \
        "regenerate it: specs templates --markdown (outside a project with templates)"


def test_the_quick_start_runs_as_written(tmp_path: Path, llm_server: LlmServer) -> None:
    block = PAGE.read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "Makefile").write_text("test:\n\ttrue\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPECS_", "OPENAI_"))}
    env.update(OPENAI_BASE_URL=llm_server.openai_url, OPENAI_API_KEY="sk-test",
               XDG_CONFIG_HOME=str(tmp_path / ".config"))
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    for line in [line for line in lines if line]:
        args = shlex.split(line)
        assert args[0] == "specs"
        if args[1] == "run":  # what the run would do, without running the agent
            args += ["--dry-run"]
        proc = subprocess.run([sys.executable, "-m", "specs", *args[1:]], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
    assert (tmp_path / "spec_nightly" / "parameters_nightly.toml").is_file()


def test_the_empty_file_hint_names_a_command_that_exists(tmp_path: Path,
                                                         run_cli: RunCli) -> None:
    _, _, diagnostics = parse_toml("", "parameters_x.toml")
    hint = diagnostics[0].hint
    commands = re.findall(r"`(specs [a-z]+)", hint)
    assert commands == ["specs new", "specs templates"]
    code, out, _ = run_cli("new", "--help")
    assert code == 0 and "TEMPLATE" in out
