"""Layered template sources: env > project > user > extra (templates.toml: folders and git
repositories) > built-in; a higher layer's template overrides a lower one of the same name,
and `specs templates` says which layer each comes from. Git sources are local bare
repositories made by the test (never the network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from specs.templates import builtin_folder, discover


def cli(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPECS_", "XDG_"))}
    proc = subprocess.run([sys.executable, "-m", "specs", *args], cwd=cwd,
                          env={**base, "COLUMNS": "200", "NO_COLOR": "1", **env},
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def template(root: Path, name: str, goal: str, version: str = "1.0.0") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "template.toml").write_text(
        f'[template]\nname = "{name}"\nversion = "{version}"\nsummary = "{goal}"\n')
    (folder / f"parameters_{name}.toml").write_text(f"""\
[meta]
goal_descriptor = "{{{{ descriptor }}}}"

[goal]
description = "{goal}"

[[tasks]]
id = 1
description = "Do it"

  [[tasks.steps]]
  id = 1
  description = "Write the note"
  expected_output = "note.txt"
  critical_flag = false
  command = "echo {name} > note.txt"
""")
    return folder


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "HOME": str(tmp_path / "home")}
    return env


def test_a_project_template_overrides_the_builtin_of_the_same_name(
        tmp_path: Path, home: dict[str, str]) -> None:
    project = tmp_path / "project"
    template(project / ".specs" / "templates", "bug_fix", "Fix it our way")
    deeper = project / "src" / "deep"
    deeper.mkdir(parents=True)
    code, out, err = cli("templates", "--json", cwd=deeper, env=home)
    assert code == 0, err
    found = {t["name"]: t for t in json.loads(out)}
    assert found["bug_fix"]["layer"] == "project"
    assert found["bug_fix"]["overrides"] == ["built-in"]
    assert found["bug_fix"]["summary"] == "Fix it our way"
    assert found["research"]["layer"] == "built-in"
    code, out, _ = cli("templates", cwd=deeper, env=home)
    assert "[project, overrides built-in]" in next(
        line for line in out.splitlines() if line.startswith("bug_fix "))
    code, out, err = cli("new", "bug_fix", "ours", cwd=deeper, env=home)
    assert code == 0, err
    assert "Fix it our way" in (deeper / "spec_ours" / "parameters_ours.toml").read_text()


def test_layers_in_order_env_project_user_extra_builtin(tmp_path: Path,
                                                        home: dict[str, str]) -> None:
    project = tmp_path / "project"
    user = Path(home["XDG_CONFIG_HOME"]) / "specs"
    extra = tmp_path / "team"
    envdir = tmp_path / "envlayer"
    for root, label in ((envdir, "env"), (project / ".specs" / "templates", "project"),
                        (user / "templates", "user"), (extra, "extra")):
        template(root, "shared", f"Shared from {label}")
        template(root, f"only_{label}", f"Only in {label}")
    (user / "templates.toml").write_text('[[sources]]\npath = "../../team"\n')
    env = {**home, "SPECS_TEMPLATES": str(envdir)}
    layers = [layer.name for layer in discover(project, env).layers]
    assert layers == ["env", "project", "user", "extra", "built-in"]
    library = discover(project, env)
    assert library.templates["shared"].layer == "env"
    assert library.templates["shared"].shadows == ("project", "user", "extra")
    assert {library.templates[f"only_{n}"].layer for n in ("env", "project", "user", "extra")} \
        == {"env", "project", "user", "extra"}
    del env["SPECS_TEMPLATES"]
    assert discover(project, env).templates["shared"].layer == "project"
    shutil.rmtree(project / ".specs")
    assert discover(project, env).templates["shared"].layer == "user"


def test_a_broken_source_is_one_line_and_the_rest_still_works(tmp_path: Path,
                                                               home: dict[str, str]) -> None:
    project = tmp_path / "project"
    (project / ".specs").mkdir(parents=True)
    (project / ".specs" / "templates.toml").write_text(
        '[[sources]]\npath = "missing"\n\n[[sources]]\ngit = "/no/such/repo.git"\n')
    broken = project / ".specs" / "templates" / "broken"
    broken.mkdir(parents=True)
    (broken / "parameters_broken.toml").write_text("[goal]\n")
    (broken / "template.toml").write_text('[variables.x]\ntype = "colour"\n')
    code, out, err = cli("templates", cwd=project, env=home)
    assert code == 0
    assert "bug_fix" in out
    lines = [line for line in err.splitlines() if line.startswith("specs: warning:")]
    assert any("templates.toml:1: " in line and "missing is not a folder" in line
               for line in lines), err
    assert any("templates.toml:4: git source /no/such/repo.git: git clone failed" in line
               for line in lines), err
    assert any("broken/template.toml:2:1: variable 'x': type 'colour'" in line
               for line in lines), err
    code, out, err = cli("new", "nothing_like_it", cwd=project, env=home)
    assert code == 2 and "no template named 'nothing_like_it'" in err


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_a_git_source_is_cloned_once_pinned_and_synced(tmp_path: Path,
                                                       home: dict[str, str]) -> None:
    work = tmp_path / "work"
    template(work / "templates", "team_review", "Review the team way")
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "v1", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    bare = tmp_path / "templates.git"
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    config = Path(home["XDG_CONFIG_HOME"]) / "specs"
    config.mkdir(parents=True)
    (config / "templates.toml").write_text(
        f'[[sources]]\ngit = "{bare}"\nsubdir = "templates"\n\n'
        f'[[sources]]\ngit = "{bare}"\nref = "{first}"\nsubdir = "templates"\n')
    project = tmp_path / "project"
    project.mkdir()
    code, out, err = cli("templates", "--json", cwd=project, env=home)
    assert code == 0, err
    found = {t["name"]: t for t in json.loads(out)}
    assert found["team_review"]["layer"] == "extra"
    assert found["team_review"]["origin"] == str(bare)
    assert found["team_review"]["summary"] == "Review the team way"
    # a new version is pushed: the cached clone keeps the old one until `sync`
    (work / "templates" / "team_review" / "template.toml").write_text(
        '[template]\nname = "team_review"\nversion = "2.0.0"\nsummary = "Review v2"\n')
    _git("commit", "-q", "-am", "v2", cwd=work)
    _git("push", "-q", str(bare), "main", cwd=work)
    _, out, _ = cli("templates", "--json", cwd=project, env=home)
    assert {t["name"]: t for t in json.loads(out)}["team_review"]["version"] == "1.0.0"
    code, out, err = cli("templates", "sync", cwd=project, env=home)
    assert code == 0, err
    assert f"<- {bare}@{first}" in out
    library = discover(project, {**os.environ, **home})
    assert library.templates["team_review"].version == "2.0.0"
    pinned = [t for t in library.shadowed if t.name == "team_review"]
    assert [t.version for t in pinned] == ["1.0.0"]  # the pinned source stays at its commit


def test_the_builtin_layer_is_the_package_data_folder() -> None:
    assert (builtin_folder() / "bug_fix" / "template.toml").is_file()
    assert discover(Path("/"), {}).layers[-1].folder == builtin_folder()


def test_any_spec_folder_is_a_template_the_original_toolspecs_too(
        tmp_path: Path, home: dict[str, str], corpus: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(corpus / "__SPEC_Engine" / "_TOOLSPECs" / "Forensic",
                    project / ".specs" / "templates" / "Forensic")
    code, _out, err = cli("new", "Forensic", "outage", cwd=project, env=home)
    assert code == 0, err
    folder = project / "spec_outage"
    assert sorted(p.name for p in folder.iterdir()) == [
        ".specs-template.toml", "exe_outage.md", "outage_SPEC.md", "parameters_outage.toml"]
    text = (folder / "parameters_outage.toml").read_text()
    assert 'goal_descriptor = "outage"' in text and 'log_output = "progress_outage.json"' in text
    assert "Forensic_SPEC.md" not in text
    code, _, err = cli("validate", str(folder), cwd=project, env=home)
    assert code == 0, err
