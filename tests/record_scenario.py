"""A hand-written run for the record tests: a small spec and the events of one run of it.

The run covers the cases the progress file and the notepad must render: a first-attempt
success (1.1), a primary failing twice then backup_1 winning (1.2), a non-critical failure with
a transient retry (1.3) followed by an escalation, a gate and two mode switches, a pause at a
before-step gate, a resume, a guidance answer, a crash mid-attempt and a second resume that
drops the open attempt (2.1), a skipped step (2.2), and the completion check.
"""

from __future__ import annotations

from typing import Any

from specs import events as ev
from specs.engine.state import RunState
from specs.spec.load import spec_from_document
from specs.spec.model import Spec

BASE = 1_772_360_100.0  # 2026-03-01T10:15:00Z

DOC: dict[str, Any] = {
    "meta": {"goal_descriptor": "demo", "dna_code": "GATTACAG"},
    "goal": {"description": "Summarise the quarterly figures into a one-page report"},
    "execution": {"default_mode": "dynamic"},
    "tasks": [
        {"id": 1, "description": "Gather the input", "steps": [
            {"id": 1, "description": "Read the config", "expected_output": "config loaded",
             "critical_flag": True},
            {"id": 2, "description": "Fetch the data", "expected_output": "data.csv",
             "critical_flag": True, "max_retries": 1,
             "backups": [{"id": 1, "description": "Copy the cached export",
                          "trigger_condition": "primary_failure"}]},
            {"id": 3, "description": "Enrich the rows", "expected_output": "enriched rows",
             "critical_flag": False, "max_retries": 1},
        ]},
        {"id": 2, "description": "Write the report", "steps": [
            {"id": 1, "description": "Draft the summary", "expected_output": "report.md",
             "critical_flag": True, "mode": "collaborative"},
            {"id": 2, "description": "Add charts", "expected_output": "charts in report.md",
             "critical_flag": False},
        ]},
    ],
}

TASK1_NOTES = {"insights": ["Task 1 (Gather the input): 2 of 3 steps completed"],
               "technical_notes": ["step 1.2 primary attempt 1 failed: exit code 1"],
               "ideas": ["promote backup_1 of step 1.2 to primary"], "human": []}
GUIDANCE = "use the Q3 template"


def make_spec(doc: dict[str, Any] | None = None) -> Spec:
    spec, problems = spec_from_document(doc or DOC)
    assert spec is not None, problems
    return spec


def ts(seconds: float) -> str:
    return ev.iso(BASE + seconds)


class Script:
    """Builds events with increasing ``seq`` and a ``ts`` one second apart."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.clock = 0.0

    def add(self, cls: type[ev.Event], **fields: Any) -> ev.Event:
        event = cls(seq=len(self.events) + 1, ts=ts(self.clock), **fields)
        self.clock += 1
        self.events.append(event)
        return event

    def attempt(self, step: str, method: str, n: int, outcome: str, **fields: Any) -> None:
        self.add(ev.AttemptStarted, step=step, method=method, attempt=n)
        self.add(ev.AttemptEnded, step=step, method=method, attempt=n, outcome=outcome,
                 **fields)


def scenario() -> list[ev.Event]:
    s = Script()
    s.add(ev.RunOpened, run_id="run_1", descriptor="demo",
          spec={"parameters": "parameters_demo.toml"}, options={},
          totals={"tasks": 2, "steps": 5})
    s.add(ev.ValidationSummary, status="WARN", warnings=["Art. VI: ratio"], violations=[
        {"article": "VI", "section": "6.3", "description": "ratio", "severity": "warning",
         "timestamp": ts(1), "corrective_action": "continue"}])
    s.add(ev.ModeSelected, mode="dynamic", selected_by="default",
          strategy="collaborative_review")
    _task1(s)
    _task2(s)
    s.add(ev.CompletionVerified, checks={"primary_deliverable_exists": True,
                                         "verification_passed": True},
          overall_status="PASS", goal_achievement_status="ACHIEVED", gaps=[])
    s.add(ev.RunEnded, status="completed", goal_achievement_status="ACHIEVED")
    return s.events


def _task1(s: Script) -> None:
    s.add(ev.TaskStarted, task="1", description="Gather the input")
    s.add(ev.StepStarted, step="1.1", mode="dynamic", critical=True)
    s.attempt("1.1", "primary", 1, "success", verdict="match", output_summary="3 keys")
    s.add(ev.StepEnded, step="1.1", status="completed", method_used="primary",
          expected_output_match=True)
    s.add(ev.StepStarted, step="1.2", mode="dynamic", critical=True,
          prior_step_dependencies=["1.1"])
    s.attempt("1.2", "primary", 1, "failure", failure_reason="exit code 1", exit_code=1)
    s.attempt("1.2", "primary", 2, "failure", failure_reason="exit code 1", exit_code=1)
    s.add(ev.BackupTriggered, step="1.2", backup=1, trigger="primary_failure",
          justification="the cached export holds the same rows",
          failure_reasons={"primary": "exit code 1 after 2 attempts"})
    s.attempt("1.2", "backup_1", 1, "success", verdict="match", output_summary="120 rows")
    s.add(ev.StepEnded, step="1.2", status="completed", method_used="backup_1",
          expected_output_match=True)
    s.add(ev.StepStarted, step="1.3", mode="dynamic", critical=False,
          prior_step_dependencies=["1.1", "1.2"])
    s.attempt("1.3", "primary", 1, "failure", failure_reason="timeout", transient=True)
    s.add(ev.RetryScheduled, step="1.3", method="primary", delay_s=2.0, reason="timeout")
    s.attempt("1.3", "primary", 2, "failure", failure_reason="service unreachable")
    s.add(ev.StepEnded, step="1.3", status="failed", message="enrichment failed; continuing")
    s.add(ev.Escalated, step="1.3", reasons=["consecutive_failures"], from_mode="dynamic",
          measurements={"consecutive_failures": 1}, reset=["consecutive_failures"])
    s.add(ev.ModeSwitched, from_mode="dynamic", to_mode="collaborative", reason="escalation",
          step="1.3")
    s.add(ev.GateRequested, gate="g1", kind="escalation", step="1.3", prompt="Continue?",
          options=["approve", "abort"])
    s.add(ev.GateAnswered, gate="g1", response="approve", by="user")
    s.add(ev.GateClosed, gate="g1")
    s.add(ev.ModeSwitched, from_mode="collaborative", to_mode="dynamic",
          reason="escalation resolved", step="1.3")
    s.add(ev.TaskEnded, task="1", status="completed_with_failures")
    s.add(ev.NotepadUpdated, task="1", **TASK1_NOTES)


def _task2(s: Script) -> None:
    s.add(ev.TaskStarted, task="2", description="Write the report")
    s.add(ev.StepStarted, step="2.1", mode="collaborative", critical=True,
          prior_step_dependencies=["1.1", "1.2", "1.3"])
    s.add(ev.GateRequested, gate="g2", kind="before_step", step="2.1", prompt="Run 2.1?",
          options=["approve", "guidance", "skip", "abort"])
    s.add(ev.RunPaused, reason="awaiting_human", gate="g2")
    s.add(ev.RunResumed, interrupted=[])
    s.add(ev.GateAnswered, gate="g2", response="guidance", by="cli", guidance=GUIDANCE)
    s.add(ev.GateClosed, gate="g2")
    s.add(ev.AttemptStarted, step="2.1", method="primary", attempt=1, guidance=GUIDANCE)
    # the process is killed here: the attempt never ends
    s.add(ev.RunResumed, interrupted=["2.1:primary:1"])
    s.attempt("2.1", "primary", 1, "success", verdict="match", output_summary="one page")
    s.add(ev.StepEnded, step="2.1", status="completed", method_used="human_guided",
          expected_output_match=True)
    s.add(ev.StepEnded, step="2.2", status="skipped", skip_reason="condition_false")
    s.add(ev.TaskEnded, task="2", status="completed")
    s.add(ev.NotepadUpdated, task="2", insights=["Task 2 (Write the report): 1 of 2 steps"],
          human=[f"step 2.1, before_step gate, guidance by cli: {GUIDANCE}"])


def replay(spec: Spec, events: list[ev.Event], upto: int | None = None) -> RunState:
    """A fresh state with the events applied (the first ``upto`` of them)."""
    state = RunState(spec)
    for event in events[:upto]:
        state.apply(event)
    return state


def index_of(events: list[ev.Event], name: str, nth: int = 1, **match: Any) -> int:
    """Position just after the ``nth`` event called ``name`` whose fields equal ``match``."""
    seen = 0
    for i, event in enumerate(events):
        if event.name == name and all(getattr(event, k) == v for k, v in match.items()):
            seen += 1
            if seen == nth:
                return i + 1
    raise LookupError(name)
