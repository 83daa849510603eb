"""The built-in templates: each instantiates (through the real ``specs new``) into a spec that
``specs validate --strict`` accepts, follows the constitution's shape, and mirrors its TOML in
its Markdown."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import RunCli
from specs.spec.load import load_spec
from specs.templates import builtin_folder, discover, load_template, sample_answers

BUILTINS = sorted(p.name for p in builtin_folder().iterdir() if (p / "template.toml").is_file())
REQUIRED = {"code_review", "bug_fix", "feature_implementation", "research", "troubleshoot",
            "forensic", "code_archaeology", "refactor", "documentation", "data_analysis"}


def test_the_library_has_every_template_the_issue_names() -> None:
    assert set(BUILTINS) >= REQUIRED
    library = discover(env={})
    assert {name for name, t in library.templates.items() if t.layer == "built-in"} >= REQUIRED
    assert not library.problems


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@pytest.mark.parametrize("name", BUILTINS)
def test_each_template_instantiates_and_validates_strictly(name: str, tmp_path: Path,
                                                           run_cli: RunCli) -> None:
    repo = _git_repo(tmp_path / "repo")
    template = load_template(builtin_folder() / name)
    answers = [f"--var={key}={json.dumps(v) if isinstance(v, list) else v}"
               for key, v in sample_answers(template).items()]
    code, out, err = run_cli("new", name, "mine", "--dir", "specs", "--no-input", *answers,
                             cwd=repo)
    assert code == 0, err
    folder = repo / "specs" / "spec_mine"
    assert f"wrote specs/spec_mine/ from {name}@" in out
    code, out, err = run_cli("validate", "--strict", str(folder))
    assert code == 0, out + err
    assert "0 errors, 0 warnings" in err
    loaded = load_spec(folder)
    spec = loaded.require()
    assert loaded.descriptor == "mine"
    assert (folder / "parameters_mine.toml").is_file() and (folder / "spec_mine.md").is_file()
    assert (folder / ".specs-template.toml").is_file()
    # the constitution's shape (Art. II, VI, VII): 2-5 tasks, 1-5 steps, backups for criticals
    assert 2 <= len(spec.tasks) <= 5
    steps = [s for _, s in spec.steps()]
    assert all(1 <= len(t.steps) <= 5 for t in spec.tasks)
    assert 0.4 <= sum(s.critical_flag for s in steps) / len(steps) <= 0.6
    assert all(s.backups for s in steps if s.critical_flag)
    assert all((s.expected_output or "").strip() for s in steps)
    # the Markdown names the same steps as the TOML
    md = loaded.markdown
    assert md is not None
    assert [(t.id, [s.id for s in t.steps]) for t in md.tasks] == \
        [(t.id, [s.id for s in t.steps]) for t in spec.tasks]
    # realistic: some steps are executable checks, and a workspace the template asks for
    assert any(s.effective_method == "command" or s.verify or s.expected_files for s in steps)


@pytest.mark.parametrize("name", BUILTINS)
def test_each_template_documents_itself(name: str) -> None:
    template = load_template(builtin_folder() / name)
    assert template.title and template.summary and template.pick_when and template.keywords
    assert template.version == "1.0.0"
    for variable in template.variables:
        assert variable.prompt and variable.prompt != variable.name
        assert not variable.required or variable.example is not None, variable.name
    page = (Path(__file__).resolve().parents[1] / "docs" / "templates.md").read_text()
    assert f"`{name}`" in page
    for variable in template.variables:
        assert f"`{variable.name}`" in page, (name, variable.name)
