"""The base of the parts a run is made of (:mod:`specs.engine.runner` puts them together)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from specs.engine.attempts import Ladder
    from specs.engine.gates import Gates
    from specs.engine.inline import Inline
    from specs.engine.runner import Runner
    from specs.engine.steps import Steps

__all__ = ["RunPart"]


class RunPart:
    """One responsibility of a run, with what every part reads: the run (``run``), its spec,
    state, options, loaded files, journal and ``emit``; and the other parts, set by the runner
    once all exist (``steps``, ``ladder``, ``gates``, ``inline``)."""

    steps: Steps
    ladder: Ladder
    gates: Gates
    inline: Inline

    def __init__(self, run: Runner) -> None:
        self.run = run
        self.spec = run.spec
        self.state = run.state
        self.options = run.options
        self.loaded = run.loaded
        self.journal = run.journal
        self.emit = run.journal.emit
