"""``specs init``: the project constitution from the interview's answers, its deterministic DNA
code (reference §2.4), collisions, and the settings specs then inherit."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

from conftest import RunCli
from specs.spec.load import load_spec
from specs.templates.dna import dna_code, infer, normalise_name, unique_dna_code


def reference_code(name: str) -> str:
    """The rule as the reference words it: the first 16 bits of sha256 of the normalised
    name, 2 bits per letter (A, T, G, C)."""
    bits = format(int.from_bytes(hashlib.sha256(name.encode()).digest()[:2], "big"), "016b")
    return "".join("ATGC"[int(bits[i:i + 2], 2)] for i in range(0, 16, 2))


@pytest.mark.parametrize("name", ["auth-system", "podcast_website", "Café Ünïcode", "x"])
def test_the_dna_code_is_the_first_16_bits_of_the_name_hash(name: str) -> None:
    assert dna_code(name) == reference_code(normalise_name(name))
    assert len(dna_code(name)) == 8 and set(dna_code(name)) <= set("ATGC")


def test_the_code_is_deterministic_and_normalised() -> None:
    assert dna_code("auth-system") == "CTGTGTTT"
    assert dna_code("  Auth-System ") == dna_code("auth-system")
    assert dna_code("my  project") == dna_code("My Project")
    assert dna_code("auth-system") != dna_code("auth-system-2")


def test_a_collision_with_another_project_rehashes(tmp_path: Path) -> None:
    taken = tmp_path / dna_code("auth-system")
    taken.mkdir()
    (taken / "project_constitution.toml").write_text(
        '[metadata]\nproject_name = "something else"\n')
    assert unique_dna_code("auth-system", tmp_path) == dna_code("auth-system#1")
    (taken / "project_constitution.toml").write_text(
        '[metadata]\nproject_name = "Auth-System"\n')  # the same project: its own code
    assert unique_dna_code("auth-system", tmp_path) == dna_code("auth-system")


@pytest.mark.parametrize(("purpose", "risk", "user_facing"), [
    ("A patient records portal for the clinic", "high", True),
    ("A prototype to learn about queues", "low", False),
    ("Nightly reports of the warehouse stock", "moderate", False),
])
def test_risk_and_audience_are_inferred_from_the_purpose(purpose: str, risk: str,
                                                         user_facing: bool) -> None:
    found = infer(purpose)
    assert found["risk"] == risk and found["user_facing"] is user_facing
    assert found["risk_reason"]


def test_init_writes_a_constitution_that_specs_inherit(tmp_path: Path, run_cli: RunCli) -> None:
    code, out, err = run_cli(
        "init", "--name", "Shop Tools", "--purpose", "A prototype of the stock counter",
        "--stack", "Python with Flask", "--dependency", "postgres", "--dependency", "stripe",
        "--autonomy", "collaborative", "--testing", "comprehensive", cwd=tmp_path)
    assert code == 0, err
    assert f"DNA code {dna_code('Shop Tools')} for 'Shop Tools'" in out
    doc = tomllib.loads((tmp_path / "project_constitution.toml").read_text())
    assert doc["metadata"]["dna_code"] == dna_code("shop tools")
    assert doc["project"]["risk_level"] == "low"  # inferred: a prototype
    assert doc["quality"]["critical_percentage"] == "20-40"
    assert doc["error_handling"] == {"propagation_enabled": True, "read_prior_steps": True,
                                     "propagation_strategy": "continue_and_log",
                                     "failure_threshold": 5}
    assert doc["execution"]["default_mode"] == "collaborative"
    assert doc["execution"]["escalation_threshold"] == 0
    assert doc["testing"]["types"] == ["unit", "integration", "end_to_end"]
    assert doc["resources"]["external_dependencies"] == ["postgres", "stripe"]
    assert doc["constraints"]["language"] == "python"
    assert len(doc["version_history"]) == 1
    code, _, err = run_cli("new", "research", "--var", "question=Which queue should we use?",
                           cwd=tmp_path)
    assert code == 0, err
    loaded = load_spec(tmp_path / "spec_research")
    assert loaded.project is not None and loaded.project.dna_code == dna_code("shop tools")


def test_init_refuses_to_overwrite_and_keeps_history_with_force(tmp_path: Path,
                                                                 run_cli: RunCli) -> None:
    args = ("init", "--name", "p", "--purpose", "A tool for the support team")
    assert run_cli(*args, cwd=tmp_path)[0] == 0
    code, _, err = run_cli(*args, cwd=tmp_path)
    assert code == 1 and "already exists; pass --force" in err
    code, _, err = run_cli(*args, "--risk", "high", "--force", cwd=tmp_path)
    assert code == 0, err
    doc = tomllib.loads((tmp_path / "project_constitution.toml").read_text())
    assert [v["version"] for v in doc["version_history"]] == ["1.0", "1.1"]
    assert doc["project"]["risk_level"] == "high"


def test_init_in_a_dna_folder_avoids_another_projects_code(tmp_path: Path,
                                                           run_cli: RunCli) -> None:
    specs = tmp_path / "SPECs"
    (specs / dna_code("alpha")).mkdir(parents=True)
    (specs / dna_code("alpha") / "project_constitution.toml").write_text(
        '[metadata]\nproject_name = "beta"\n')
    code, _out, err = run_cli("init", "--dir", "SPECs", "--dna-folder", "--name", "alpha",
                             "--purpose", "Tidy the alpha repository", cwd=tmp_path)
    assert code == 0, err
    assert (specs / dna_code("alpha#1") / "project_constitution.toml").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (("--purpose", "A tool for the team"), "no answer for 'name'"),
    (("--name", "p", "--purpose", "short"), "purpose: must have at least 10 characters"),
    (("--name", "p", "--purpose", "A tool for the team", "--autonomy", "wild"),
     "autonomy: must be one of silent, dynamic, collaborative (got 'wild')"),
    (("--name", "p", "--purpose", "A tool for the team", "--complexity", "huge"),
     "complexity: must be one of simple, moderate, complex"),
])
def test_bad_or_missing_answers_are_one_line(tmp_path: Path, run_cli: RunCli,
                                             args: tuple[str, ...], message: str) -> None:
    code, _, err = run_cli("init", *args, "--no-input", cwd=tmp_path)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "project_constitution.toml").exists()
