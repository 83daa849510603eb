"""``specs templates suggest``: templates ranked for a goal, each with its reasons; the
original's selection tree; the history seam (success rates)."""

from __future__ import annotations

import json

import pytest

from conftest import RunCli
from specs.templates import discover
from specs.templates.suggest import suggest

TEMPLATES = list(discover(env={}).templates.values())


@pytest.mark.parametrize(("goal", "best"), [
    ("Production is down since the 14:05 deploy and orders are lost", "forensic"),
    ("Security breach: customer data leaked from the production database", "forensic"),
    ("The nightly build is broken since the dependency upgrade", "troubleshoot"),
    ("I inherited this legacy billing module and nobody knows what it does", "code_archaeology"),
    ("Fix the bug where parse_date returns None for timezone offsets", "bug_fix"),
    ("Add CSV export to the reports page", "feature_implementation"),
    ("Review the pull request that adds payments", "code_review"),
    ("Refactor the 400-line request handler into small functions", "refactor"),
    ("Write documentation for the command line", "documentation"),
    ("Which message queue should we adopt for the event bus?", "research"),
    ("What were the total sales per region last quarter?", "data_analysis"),
])
def test_the_best_template_for_a_goal(goal: str, best: str) -> None:
    ranked = suggest(goal, TEMPLATES)
    assert ranked and ranked[0].name == best, [(s.name, s.score, s.reasons) for s in ranked]
    assert all(s.reasons for s in ranked)


def test_the_selection_tree_is_a_reason() -> None:
    ranked = suggest("Production incident: the API is down", TEMPLATES)
    assert any("the selection tree" in r and "Forensic" in r for r in ranked[0].reasons)
    incident = suggest("A production incident made reports slow", TEMPLATES)
    assert incident[0].name == "troubleshoot"
    assert "without data loss or an outage -> Troubleshoot" in " ".join(incident[0].reasons)


def test_nothing_fits_a_goal_with_no_signal() -> None:
    assert suggest("bake a lemon cake", TEMPLATES) == []


def test_success_rates_reorder_and_explain() -> None:
    goal = "Fix the crash when the config file is missing"
    plain = [s.name for s in suggest(goal, TEMPLATES)]
    assert plain[:2] == ["bug_fix", "troubleshoot"]
    ranked = suggest(goal, TEMPLATES, success_rates={"bug_fix": (10, 1),
                                                      "troubleshoot": (8, 8)})
    assert [s.name for s in ranked][:2] == ["troubleshoot", "bug_fix"]
    assert "8 of 8 specs made from it reached ACHIEVED" in ranked[0].reasons
    few = suggest(goal, TEMPLATES, success_rates={"bug_fix": (2, 0)})
    assert [s.name for s in few] == plain  # fewer than three specs: no evidence yet


def test_the_command_prints_the_ranking_and_the_next_step(run_cli: RunCli) -> None:
    code, out, _ = run_cli("templates", "suggest", "Production is down", "--json")
    assert code == 0
    assert json.loads(out)[0]["name"] == "forensic"
    code, out, _ = run_cli("templates", "suggest", "Production is down", "--limit", "1")
    assert out.startswith("1. forensic (") and out.rstrip().endswith("next: specs new forensic")
    code, _, err = run_cli("templates", "suggest", "bake a cake")
    assert code == 1 and "no template fits this goal" in err
