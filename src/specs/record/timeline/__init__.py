"""Timeline: a run's Gantt chart, drawn from its events (reference §5.1, rollout phase 3).

:func:`build_timeline` reads a run's events (and its spec, when it can still be loaded) and
returns :class:`TimelineData`: one :class:`Bar` per step, grouped by task, from its
step-started to its step-ended; inside it one :class:`Segment` per attempt (method, number,
outcome); :class:`Marker` for what happened at a moment (a skipped step, a gate and its answer,
a backup taking over, a retry, an escalation, a pause and its resume, a transition); the
critical path; and the ``parallel_execution_summary`` of the progress file, measured the same
way (:mod:`specs.record.parallel`). Times are seconds since execution began (the execution plan,
after pre-flight validation; ``origin_at``); everything comes from the events, so the same
events always give the same chart.

:func:`render_terminal` draws the chart with Rich (one row per step, a time axis scaled to
the width, primary and backup attempts in different characters and colours, failed attempts
marked, critical-path rows highlighted, a legend). :func:`render_html` writes a self-contained
page with an inline SVG chart (no script, no external resource; hover titles via ``<title>``).
``specs timeline RUN`` (:mod:`specs.cli.timeline`) prints one or the other; docs/timeline.md
shows an example.

The package: :mod:`.model` (the data), :mod:`.build` (from the events), :mod:`.display` (what
both renderers write: durations, ticks, labels), :mod:`.terminal` and :mod:`.page` (HTML).

Without the spec the chart still draws: rows come from the events (steps in id order within
their task), dependencies from what the launches recorded (``dependencies_satisfied``, else
``prior_step_dependencies``), and the planned critical path from the execution-planned event.
"""

from specs.record.timeline.build import build_timeline
from specs.record.timeline.model import Bar, Marker, Segment, TaskRow, TimelineData
from specs.record.timeline.page import render_html
from specs.record.timeline.terminal import render_terminal

__all__ = ["Bar", "Marker", "Segment", "TaskRow", "TimelineData", "build_timeline",
           "render_html", "render_terminal"]
