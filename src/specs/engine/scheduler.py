"""The parallel scheduler: run every ready step of the plan at once, within the limits.

The scheduler owns only the bookkeeping of a parallel run (which steps run, which wait, which
resources are held, which branch waits for a human); each step runs through the runner's own
per-step logic, so a step of a parallel run is decided exactly as in a sequential one (trigger
rule, condition, gate, method ladder, checks, failure strategy, escalation).

Rules (SPEC_FORMAT.md §1.7 and §2, reference §5.1):

- **Ready**: every predecessor in the plan (:mod:`specs.plan.graph`) is *settled*: it reached a
final
  status (completed, failed or skipped) and its branch is over (a failed step whose decision is
  still pending is not settled). The step's trigger rule then decides whether it runs.
- **Limits**: at most ``max_parallel`` steps run at once; a step with ``parallel_safe = false``
  runs alone. Each name in ``resources_required`` is a lock whose capacity ``[resources]``
  gives (default 1); steps whose ``output_files`` overlap never run together (paths compared
  normalised, a glob against the paths it matches, as the plan's conflicts). A step of a
  SPECLet runs beside a step of another SPECLet only when both SPECLets set
  ``parallel_allowed = true`` (the plan's stages). Among the ready steps, the plan order
  decides.
- **Failure policy** (``[execution] parallel_failure_policy``): when a critical step finally
  fails and stays unresolved, ``abort_siblings`` (the default) cancels the running steps of
  its ``parallel_group`` (every running step when it has none): their processes are killed and
  they end ``failed`` with the reason, resolved; ``finish_siblings`` lets them finish.
  Dependents follow their trigger rules (``all_success``: skipped).
- **Humans**: a step waiting for a decision pauses its own branch only; the others go on. When
  nothing else can run, the run pauses (exit code 3) at the first open gate.
- **Stops**: a halt (``halt_on_critical``) or an abort stops launching; every running step is
  cancelled (``abort_siblings``) or allowed to finish (``finish_siblings``), then the run stops.
  Resuming a halted run reopens the steps the halt cancelled.
- **Rate limits**: a step whose attempts failed on a rate limit lowers the limit by one when
  it ends (never below one), for the rest of the run.

Costs are O(1) per launch and per completion (ready heap keyed by plan order, dependency
counters, a completion queue), so the engine's overhead stays flat on wide plans. A step that
completes (or is skipped) at its first attempt while nothing stops the run is settled in its
task's done callback, which also launches the steps it readied (when their task is open and
they fit, in plan order); everything else (failures, retries, pauses, stops, opening a task)
goes through the main loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import heapq
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specs import events as ev
from specs.engine.state import STEP_FINAL, TASK_FINAL
from specs.engine.stops import Paused, Stopped
from specs.plan.graph import Plan, _norm_path

if TYPE_CHECKING:
    from specs.engine.inline import InlineCall
    from specs.engine.runner import Runner
    from specs.spec.model import Step, Task

RATE_LIMIT_WORDS = ("rate limit", "rate-limit", "429", "too many requests")
#: how long steps run inline (see :meth:`Inline.function`) before the loop gets a turn
YIELD_S = 0.005
#: at most this many ready steps are launched in one go (inline steps: their starts share a
#: write, and the loop gets a turn between batches)
BATCH = 32


@dataclass
class Running:
    """A step running as a branch (an asyncio task of its own), with what it holds."""

    ref: str
    branch: asyncio.Task[None]
    slot: int
    resources: tuple[str, ...]
    alone: bool
    globs: bool = False


@dataclass
class Scheduler:
    """One parallel run of ``plan`` by ``runner``; see the module docstring."""

    runner: Runner
    plan: Plan
    limit: int
    policy: str
    running: dict[str, Running] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    paused: list[BaseException] = field(default_factory=list)
    stop: BaseException | None = None
    max_concurrent: int = 0
    throttled: int = 0
    error: Exception | None = None

    def __post_init__(self) -> None:
        self.index = {ref: i for i, ref in enumerate(self.plan.order)}
        self.remaining = {ref: len(node.deps) for ref, node in self.plan.nodes.items()}
        self.settled: set[str] = set()
        self.unsettled = {ref: len(task.steps) for ref, task in self.runner.state.tasks.items()}
        self.ready: list[tuple[int, str]] = []
        self.free_slots = list(range(1, self.limit + 1))
        self.alone_running = 0
        self.done: asyncio.Queue[asyncio.Task[None]] = asyncio.Queue()
        self.by_branch: dict[asyncio.Task[None], Running] = {}
        self.files: dict[str, tuple[str, ...]] = {}
        self.globs_running = 0
        self.allowed = {str(s.id): s.parallel_allowed is True
                        for s in reversed(self.runner.spec.speclets or ())}
        self.speclets_running: dict[str | None, int] = {}
        self.inline = 0  # steps run inline since the loop last had a turn
        self.inline_since = 0.0

    async def run(self) -> None:
        steps = self.runner.state.steps
        self.runner.journal.branches = self.running
        self._reopen_cancelled()
        for ref in self.plan.order:  # a resumed run: what already finished is settled
            if steps[ref].status in STEP_FINAL and not self._open_gate(ref):
                self._settle(ref)
        for ref, count in self.remaining.items():
            if count == 0 and ref not in self.settled:
                heapq.heappush(self.ready, (self.index[ref], ref))
        try:
            while True:
                await self._launch_ready()
                if not self.running:
                    break  # nothing runs, nothing can start: done, paused branches, stopped
                finished = [await self.done.get()]
                while not self.done.empty():
                    finished.append(self.done.get_nowait())
                for done in finished:
                    await self._finished(done)
                if self.error is not None:
                    raise self.error
        except BaseException:
            await self._cancel_all()  # Ctrl-C, SIGTERM: stop every branch before leaving
            raise
        for spec_task in self.runner.spec.tasks:
            self._end_task_if_done(spec_task.ref)
        if self.stop is not None:
            raise self.stop
        if self.paused:
            raise self.paused[0]

    def _reopen_cancelled(self) -> None:
        """A run resumed after a halt: the steps the halt cancelled (``abort_siblings``) run
        again, as the steps it never launched do."""
        state = self.runner.state
        end = state.end
        if end is None or end.status != "halted" or not end.reason:
            return
        mark = f"cancelled: {end.reason}"
        for ref in self.plan.order:
            step = state.steps[ref]
            if step.status == "failed" and step.message == mark:
                self.runner.emit(ev.StepReopened(step=ref, reason="resumed after a halt "
                                                 "that cancelled it"))

    async def _cancel_all(self) -> None:
        """Cancel the running branches and wait for them (their processes are killed)."""
        tasks = [entry.branch for entry in self.running.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _open_gate(self, ref: str) -> bool:
        return any(g.step == ref for g in self.runner.state.open_gates())

    # -- readiness ------------------------------------------------------------------------------

    def _settle(self, ref: str) -> None:
        if ref in self.settled:
            return
        self.settled.add(ref)
        self.unsettled[self.plan.nodes[ref].task] -= 1
        for child in self.plan.dependents.get(ref, ()):
            self.remaining[child] -= 1
            if self.remaining[child] == 0 and child not in self.settled:
                heapq.heappush(self.ready, (self.index[child], child))

    async def _launch_ready(self) -> None:
        skipped: list[tuple[int, str]] = []
        while self.ready and self.stop is None and len(self.running) < self.limit:
            item = heapq.heappop(self.ready)
            ref = item[1]
            if ref in self.settled or ref in self.running:
                continue
            if not self._fits(ref):
                skipped.append(item)
                if self.alone_running or not self.plan.nodes[ref].parallel_safe:
                    break  # keep the order: nothing passes a step that must run alone
                continue
            try:
                if await self._start_task(ref):
                    continue
            except Stopped as stop:  # the task's condition failed a critical step: a halt
                self.stop = stop
                await self._siblings(ref, stop.reason, everyone=True)
                break
            except Paused as pause:  # ... whose decision is asked of a human who is not here
                self.paused.append(pause)
                continue
            branched = self._launch([ref, *self._companions(ref)])
            if not skipped and (branched or self._yield_due()):
                # let the branches just launched begin (their work overlaps the next
                # launches, and their ends come spread out as their starts), or let the loop
                # breathe after a while of inline steps
                await asyncio.sleep(0)
        for item in skipped:
            heapq.heappush(self.ready, item)

    def _yield_due(self) -> bool:
        """True (once) when inline steps have held the event loop for ``YIELD_S``."""
        if not self.inline:
            return False
        now = time.monotonic()
        if now - self.inline_since < YIELD_S:
            return False
        self.inline, self.inline_since = 0, now
        return True

    def _fits(self, ref: str) -> bool:
        if self.alone_running:
            return False
        node = self.plan.nodes[ref]
        if not node.parallel_safe and self.running:
            return False
        if node.resources or node.output_files:
            capacity = self.runner.spec.resources or {}
            if not all(self.held.get(name, 0) < max(1, int(capacity.get(name, 1)))
                       for name in self._resources(ref)):
                return False
            if self._file_clash(ref):
                return False
        return not self.allowed or self._speclet_fits(ref)

    def _speclet_fits(self, ref: str) -> bool:
        mine = self.plan.nodes[ref].speclet
        return all(count == 0 or other == mine
                   or (self.allowed.get(mine or "", True) and self.allowed.get(other or "", True))
                   for other, count in self.speclets_running.items())

    def _files(self, ref: str) -> tuple[str, ...]:
        found = self.files.get(ref)
        if found is None:
            found = self.files[ref] = tuple(dict.fromkeys(
                _norm_path(p) for p in self.plan.nodes[ref].output_files))
        return found

    def _file_clash(self, ref: str) -> bool:
        """A glob among the step's output files or a running step's matches the other's path
        (equal paths are plain locks, see :meth:`_resources`)."""
        mine = self._files(ref)
        if not mine or not (self.globs_running or any(map(_is_glob, mine))):
            return False
        return any(_matches(a, b) for entry in self.running.values()
                   for a in mine for b in self._files(entry.ref))

    def _resources(self, ref: str) -> tuple[str, ...]:
        node = self.plan.nodes[ref]
        if not node.output_files:
            return node.resources
        return tuple(dict.fromkeys(node.resources + tuple(f"file:{p}" for p in self._files(ref))))

    # -- launching ------------------------------------------------------------------------------

    async def _start_task(self, ref: str) -> bool:
        """Open the step's task at its first step; True when the step needs no launch (the
        task's condition skipped its steps)."""
        runner = self.runner
        node = self.plan.nodes[ref]
        if runner.state.tasks[node.task].status == "pending":
            spec_task = runner.task_by_ref[node.task]
            runner.emit(ev.TaskStarted(task=spec_task.ref, description=spec_task.description))
            if await runner.steps.task_skipped(spec_task):
                for step_ref in runner.state.tasks[node.task].steps:
                    self._settle(step_ref)
        return ref in self.settled

    def _companions(self, first: str) -> list[str]:
        """Ready steps to launch together with ``first``, just taken: the next ones in plan
        order that need no check to fit (no resources, no output files, parallel-safe, no
        SPECLet rules) and whose task is open, within the limit and ``BATCH``; none when
        ``first`` must run alone."""
        found: list[str] = []
        if not self.plan.nodes[first].parallel_safe:
            return found
        room = min(self.limit - len(self.running) - 1, BATCH - 1)
        tasks = self.runner.state.tasks
        taken = {first}
        while self.ready and len(found) < room:
            ref = self.ready[0][1]
            if ref in self.settled or ref in self.running or ref in taken:
                heapq.heappop(self.ready)  # (the heap may hold a step twice)
                continue
            node = self.plan.nodes[ref]
            if node.resources or node.output_files or not node.parallel_safe or \
                    self.allowed or tasks[node.task].status == "pending":
                break
            heapq.heappop(self.ready)
            found.append(ref)
            taken.add(ref)
        return found

    def _launch(self, refs: list[str]) -> bool:
        """Start ready steps that fit together: each as a branch (an asyncio task), except
        steps the runner can run inline (``Inline.function``), which run now, together
        (``Inline.start_batch``), and are settled at once (or go on as a branch). True when
        a branch was started."""
        branched = False
        runner = self.runner
        inline: list[tuple[str, int, Task, Step, InlineCall]] = []
        for ref in refs:
            node = self.plan.nodes[ref]
            slot = heapq.heappop(self.free_slots) if self.free_slots else \
                len(self.running) + len(inline) + 1
            runner.launch_info[ref] = {"execution_id": f"{runner.state.run_id}:{ref}",
                                       "parallel_group": node.parallel_group, "slot": slot,
                                       "dependencies_satisfied": list(node.deps)}
            spec_task, step = runner.task_by_ref[node.task], runner.step_by_ref[ref]
            call = runner.inline.function(spec_task, step)
            if call is None:
                self._branch(ref, slot, runner.steps.step(spec_task, step))
                branched = True
            else:
                inline.append((ref, slot, spec_task, step, call))
        if not inline:
            return branched
        # they start (plain functions also run and end) inline: nothing else runs meanwhile,
        # so they take no locks; a step that goes on as a branch takes them with it
        self.max_concurrent = max(self.max_concurrent, len(self.running) + len(inline))
        if not self.inline:
            self.inline_since = time.monotonic()
        rests = runner.inline.start_batch([(t, s, c) for _, _, t, s, c in inline])
        for (ref, slot, _, _, _), rest in zip(inline, rests, strict=True):
            if rest is not None:  # an async function, a failed first attempt, an escalation
                self._branch(ref, slot, rest)
                branched = True
                continue
            heapq.heappush(self.free_slots, slot)
            self.inline += 1
            self._settle(ref)
            self._end_task_if_done(self.plan.nodes[ref].task)
        return branched

    def _branch(self, ref: str, slot: int, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run the rest of a step as a task of its own, holding its slot and locks."""
        node = self.plan.nodes[ref]
        resources = self._resources(ref)
        for name in resources:
            self.held[name] = self.held.get(name, 0) + 1
        task = asyncio.ensure_future(coroutine)
        entry = Running(ref, task, slot, resources, alone=not node.parallel_safe,
                        globs=bool(node.output_files)
                        and any(map(_is_glob, self._files(ref))))
        self.running[ref] = entry
        self.by_branch[task] = entry
        self.alone_running += entry.alone
        self.globs_running += entry.globs
        self.speclets_running[node.speclet] = self.speclets_running.get(node.speclet, 0) + 1
        task.add_done_callback(self._on_done)
        self.max_concurrent = max(self.max_concurrent, len(self.running))

    def _on_done(self, task: asyncio.Task[None]) -> None:
        """A step's branch ended. The common case (it completed or was skipped, and nothing
        stops the run) is settled here at once and the steps it readied are launched, so a
        chain does not wait for the main loop; everything else goes to the main loop."""
        entry = self.by_branch.get(task)
        step = self.runner.state.steps[entry.ref] if entry is not None else None
        if entry is None or step is None or self.stop is not None or task.cancelled() or \
                task.exception() is not None or \
                step.status not in ("completed", "skipped") or len(step.attempts) > 1:
            self.done.put_nowait(task)  # failures, retries (rate limits), stops: main loop
            return
        try:
            self._release(entry)
            self._settle(entry.ref)
            self._end_task_if_done(self.plan.nodes[entry.ref].task)
            deferred = self._launch_started_tasks()
        except Exception as exc:  # e.g. the state folder became unwritable: the main loop
            self.error = exc      # raises it (a callback's exception would only be logged)
            deferred = True
        if deferred or not self.running:
            self.done.put_nowait(task)  # the main loop launches the rest or ends the run

    def _launch_started_tasks(self) -> bool:
        """Launch what fits among the ready steps whose task is already open (opening a task
        may evaluate its condition: the main loop does that); True when some were left."""
        tasks = self.runner.state.tasks
        while self.ready and len(self.running) < self.limit:
            item = self.ready[0]
            ref = item[1]
            if ref in self.settled or ref in self.running:
                heapq.heappop(self.ready)
                continue
            if tasks[self.plan.nodes[ref].task].status == "pending" or not self._fits(ref):
                return True  # keep the plan order: the main loop decides from here
            heapq.heappop(self.ready)
            self._launch([ref, *self._companions(ref)])
            if self._yield_due():
                return bool(self.ready)  # inline steps ran long enough: the main loop goes on
        return False  # nothing ready, or the limit is reached (a later end launches more)

    def _release(self, entry: Running) -> None:
        self.running.pop(entry.ref, None)
        self.by_branch.pop(entry.branch, None)
        self.alone_running -= entry.alone
        self.globs_running -= entry.globs
        self.speclets_running[self.plan.nodes[entry.ref].speclet] -= 1
        heapq.heappush(self.free_slots, entry.slot)
        for name in entry.resources:
            self.held[name] -= 1

    # -- endings --------------------------------------------------------------------------------

    async def _finished(self, task: asyncio.Task[None]) -> None:
        entry = self.by_branch.get(task)
        if entry is None:
            return  # settled by _on_done, or a cancelled sibling already accounted for
        self._release(entry)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, Paused):
            self.paused.append(error)
            return  # the branch waits for a human: its dependents stay blocked
        step = self.runner.state.steps[entry.ref]
        if isinstance(error, Stopped):
            self.stop = self.stop or error
            await self._siblings(entry.ref, error.reason, everyone=True)
            if step.status not in STEP_FINAL:
                return  # stopped before the step started: it stays pending (resume runs it)
        elif error is not None:
            raise error
        self._settle(entry.ref)
        if step.critical and step.status == "failed" and not step.resolved:
            await self._siblings(entry.ref, f"critical step {entry.ref} failed")
        if self.limit > 1 and any(
                a.failure_reason and any(w in a.failure_reason.lower() for w in RATE_LIMIT_WORDS)
                for a in step.round_attempts()):
            self.limit -= 1
            self.throttled += 1
        self._end_task_if_done(self.plan.nodes[entry.ref].task)

    async def _siblings(self, ref: str, reason: str, *, everyone: bool = False) -> None:
        """Apply the failure policy to the steps running beside a failed critical step (of
        its group), or to ``everyone`` running when the run stops."""
        if self.policy != "abort_siblings":
            return
        group = None if everyone else self.plan.nodes[ref].parallel_group
        victims = [r for r in list(self.running.values())
                   if group is None or self.plan.nodes[r.ref].parallel_group == group]
        for victim in victims:
            victim.branch.cancel()
        for victim in victims:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await victim.branch
            self._release(victim)
            if self.runner.state.steps[victim.ref].status == "pending":
                heapq.heappush(self.ready, (self.index[victim.ref], victim.ref))
                continue  # it had not started (or waited at a gate): not cancelled, put back
            self._cancelled(victim.ref, f"cancelled: {reason}")
            self._settle(victim.ref)
            self._end_task_if_done(self.plan.nodes[victim.ref].task)

    def _cancelled(self, ref: str, reason: str) -> None:
        runner = self.runner
        step = runner.state.steps[ref]
        if step.status in STEP_FINAL:
            return
        attempt = step.open_attempt
        if attempt is not None:
            runner.emit(ev.AttemptEnded(step=ref, method=attempt.method, attempt=attempt.attempt,
                                        outcome="error", failure_reason=reason))
        runner.emit(ev.StepEnded(step=ref, status="failed", message=reason, resolved=True))

    def _end_task_if_done(self, task_ref: str) -> None:
        runner = self.runner
        task_state = runner.state.tasks[task_ref]
        if task_state.status == "pending" or task_state.status in TASK_FINAL:
            return
        if self.unsettled[task_ref] == 0:
            runner.steps.end_task(runner.task_by_ref[task_ref])


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _matches(first: str, second: str) -> bool:
    """Two normalised output paths name a common file: equal, or a glob matching the other."""
    return first == second or (_is_glob(first) and fnmatch.fnmatchcase(second, first)) or (
        _is_glob(second) and fnmatch.fnmatchcase(first, second))
