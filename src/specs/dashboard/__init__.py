"""The real-time dashboard: every run of a state folder (and of the history database) in a
browser, followed live, with its gates answered from an inbox (docs/dashboard.md).

:func:`create_app` makes the web application (Starlette, server-rendered Jinja2 pages, one
plain script and one stylesheet shipped in the package), :class:`DashboardConfig` says what it
serves and to whom, :func:`serve` runs it with uvicorn (``specs dashboard``), and
:func:`export_run` writes a run's pages and data as a static snapshot that opens from disk
(``specs dashboard --export RUN DIR``).

The dashboard is a face of the library like the CLI: it reads runs with :mod:`specs.api`
(``list_runs``'s summaries, ``show_run``'s state, the events of ``events.jsonl``), draws
with :mod:`specs.record` (the timeline), answers gates with ``answer_gate`` and continues
runs with ``resume_run``; it never wires a run itself.
"""

from __future__ import annotations

from specs.dashboard.app import create_app
from specs.dashboard.config import DashboardConfig
from specs.dashboard.export import export_run
from specs.dashboard.serve import serve

__all__ = ["DashboardConfig", "create_app", "export_run", "serve"]
