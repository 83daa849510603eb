"""The inbox: every gate that waits for a human, across the state folder's runs.

An item is a pending gate (before a step, a human step, the review of a critical failure,
an escalation) with its evidence: the methods the step tried and why each failed, the
backups that took over, and the escalation's reasons. Each item says whether its run waits
at the gate now (``live``: the answer wakes it) or is paused (the answer goes into its log
and ``specs resume`` continues it), and gives the command line that does the same as each
button.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from specs import events as ev
from specs.api.runs import open_gates, read_run, run_is_live
from specs.dashboard.records import GATE_LANE, lane_label
from specs.dashboard.runs import RunIndex

__all__ = ["answer_commands", "inbox_items"]

#: answers a button gives directly (the others need a value: guidance, choose, switch_mode)
PLAIN = ("approve", "reject", "skip", "retry", "accept_failure", "abort")


def answer_commands(run_id: str, step: str | None, live: bool) -> dict[str, str]:
    """The command line of each answer, as ``specs approve|reject|resume`` give them."""
    where = f" {shlex.quote(step)}" if step else ""
    out = {"approve": f"specs approve {run_id}{where}",
           "guidance": f"specs approve {run_id}{where} --guidance 'TEXT'",
           "reject": f"specs reject {run_id}{where}"}
    for verb in ("skip", "retry", "accept_failure", "abort", "choose"):
        value = ":METHOD" if verb == "choose" else ""
        out[verb] = (f"specs resume {run_id} --decision {verb}{value}" if not live else
                     f"(a live run: answer here, or stop it and `specs resume {run_id} "
                     f"--decision {verb}{value}`)")
    return out


def _evidence(events: list[ev.Event], step: str | None) -> dict[str, Any]:
    tried: list[dict[str, Any]] = []
    backups: list[dict[str, Any]] = []
    reasons: list[str] = []
    for event in events:
        if getattr(event, "step", None) != step or step is None:
            continue
        if isinstance(event, ev.AttemptEnded):
            tried.append({"label": lane_label(event.method, event.attempt)[1],
                          "method": event.method, "attempt": event.attempt,
                          "outcome": event.outcome, "failure_reason": event.failure_reason,
                          "exit_code": event.exit_code, "verdict": event.verdict})
        elif isinstance(event, ev.BackupTriggered):
            backups.append({"backup": event.backup, "trigger": event.trigger,
                            "justification": event.justification})
        elif isinstance(event, ev.Escalated):
            reasons = list(event.reasons)
    return {"tried": tried, "backups": backups, "escalation": reasons}


def _items_of(folder: Path, spec: str) -> list[dict[str, Any]]:
    events = read_run(folder)
    gates = open_gates(events)
    if not gates:
        return []
    live = run_is_live(folder)
    items = []
    for gate in gates:
        item = {
            "id": f"{folder.name}--{gate.gate}", "run_id": folder.name, "spec": spec,
            "gate": gate.gate, "kind": gate.kind, "lane": GATE_LANE.get(gate.kind, gate.kind),
            "step": gate.step, "prompt": gate.prompt, "options": list(gate.options),
            "requested_at": gate.ts, "live": live,
            "buttons": [v for v in PLAIN if v in gate.options or v == "reject"],
            "guidance": "guidance" in gate.options, "choose": "choose" in gate.options,
            "cli": answer_commands(folder.name, gate.step, live),
            "link": f"/inbox#{folder.name}--{gate.gate}",
            "run_link": f"/runs/{folder.name}" + (f"#step-{gate.step}" if gate.step else ""),
            **_evidence(events, gate.step)}
        items.append(item)
    return items


def inbox_items(index: RunIndex) -> list[dict[str, Any]]:
    """Every pending gate of the state folder's runs, the oldest first."""
    items: list[dict[str, Any]] = []
    for row in index.state_rows():
        if row.pending_gate is None or row.status in ("completed", "failed", "aborted"):
            continue
        try:
            items.extend(_items_of(index.folder(row.run_id), row.spec))
        except OSError:
            continue
    return sorted(items, key=lambda item: item["requested_at"])
