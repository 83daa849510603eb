"""The Dask backend on a real LocalCluster (worker *processes*): attempts run on the workers,
the engine keeps the ladder and the events, timeouts and cancellations kill remote commands,
a dead worker is a transient failure, and the CLI's ``--backend dask``/``--scheduler``.

One module-wide cluster (2 worker processes, the fixture) serves the in-process tests and the
resume after Ctrl-C; the two CLI runs with ``--backend dask`` alone start their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402

from specs import backends  # noqa: E402
from specs import events as ev  # noqa: E402
from specs.backends.dask import (  # noqa: E402
    DaskBackend,
    RemoteAttempt,
    boundary_outcome,
    portable_outcome,
    run_attempt_remote,
)
from specs.engine.runner import Runner, RunOptions, RunResult  # noqa: E402
from specs.errors import UsageError  # noqa: E402
from specs.executors.base import Outcome, StepContext  # noqa: E402
from specs.executors.python import run_python  # noqa: E402
from specs.spec.load import load_spec  # noqa: E402
from specs.spec.model import Action  # noqa: E402

HEAD = """\
[meta]
goal_descriptor = "{name}"

[execution]
default_mode = "silent"
{execution}

[goal]
description = "Run on Dask workers"

[knowledge_capture]
enabled = false

[retry]
backoff_base_seconds = 0.05

[[tasks]]
id = 1
description = "Work"
"""

# the shell is the process the worker starts: $$ is the shell, $PPID the worker
PROBE = """printf '{"pid": %s, "ppid": %s, "step": "%s"}' $$ $PPID "$SPECS_STEP\""""

STEPS_PY = """\
import os


def where(ctx):
    return {"pid": os.getpid(), "step": ctx.ref, "before": ctx.outputs.get("1.1")}


def die_once(ctx):
    if ctx.attempt == 1:
        os._exit(1)  # the worker process dies mid-attempt
    return {"pid": os.getpid()}


def unpicklable(ctx):
    return {"lock": __import__("threading").Lock()}
"""


def step(number: int, **keys: Any) -> str:
    lines = ["", "  [[tasks.steps]]", f"  id = {number}",
             f'  description = "step {number}"', f'  expected_output = "step {number} done"']
    backups = keys.pop("backups", [])
    for key, value in keys.items():
        lines.append(f"  {key} = {_toml(value)}")
    for index, backup in enumerate(backups, 1):
        lines += ["", "    [[tasks.steps.backups]]", f"    id = {index}",
                  f'    description = "backup {index}"']
        lines += [f"    {key} = {_toml(value)}" for key, value in backup.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f"'''{value}'''" if '"' in value or "\\" in value else json.dumps(value)
    return json.dumps(value)


def make_spec(root: Path, name: str, steps: list[str], execution: str = "") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / f"parameters_{name}.toml").write_text(
        HEAD.format(name=name, execution=execution) + "".join(steps))
    (folder / "steps.py").write_text(STEPS_PY)
    return folder


def run_spec(folder: Path, backend: DaskBackend | None) -> tuple[RunResult, list[ev.Event]]:
    """Run in this process, attempts on ``backend`` (None: locally), recording the events."""
    seen: list[ev.Event] = []
    runner = Runner(load_spec(folder), RunOptions(state_dir=folder.parent / ".specs",
                                                  no_input=True, fsync_interval=60),
                    subscribers=[lambda event, _state: seen.append(event)],
                    executors=backend.executors() if backend else None)
    result = asyncio.run(backends.run_with(backend, runner.start))
    return result, seen


def attempts(events: list[ev.Event]) -> dict[tuple[str, str, int], Any]:
    return {(e.step, e.method, e.attempt): e for e in events
            if isinstance(e, ev.AttemptEnded)}


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a container's init may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_dead(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_file(path: Path, within: float = 30.0,
              proc: subprocess.Popen[str] | None = None) -> str:
    """The content of ``path`` once written (by a step; ``proc`` runs it, when it is a CLI)."""
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        if proc is not None and (proc.poll() is not None or time.monotonic() > deadline):
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{path} never appeared; exit {proc.returncode}\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text().strip()


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A LocalCluster of 2 worker processes (Dask's own re-runs off, as the backend's)."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=4, processes=True,
                                         dashboard_address="127.0.0.1:0",
                                         silence_logs=logging.ERROR)
    try:
        yield local.scheduler_address
    finally:
        local.close()


def worker_pids(address: str) -> set[int]:
    with distributed.Client(address, set_as_default=False) as client:
        return set(client.run(os.getpid).values())


def cli(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    """``python -m specs ARGS`` in a process group of its own (as a terminal would run it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.Popen([sys.executable, "-m", "specs", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


# -- in-process: Runner(executors=DaskBackend(...).executors()) --------------------------------


def test_command_and_python_steps_run_in_worker_processes(tmp_path: Path, cluster: str) -> None:
    folder = make_spec(tmp_path, "where", [step(1, command=PROBE), step(2, callable="steps:where")])
    result, events = run_spec(folder, DaskBackend(cluster))
    assert (result.exit_code, result.goal) == (0, "ACHIEVED")
    workers, engine = worker_pids(cluster), os.getpid()
    done = attempts(events)
    shell = done[("1.1", "primary", 1)].output
    assert shell["step"] == "1.1"  # SPECS_STEP reached the worker's command
    assert shell["ppid"] in workers and shell["ppid"] != engine  # a worker started the command
    python = done[("1.2", "primary", 1)].output
    assert python["pid"] in workers and python["pid"] != engine
    assert python["before"] == shell  # earlier outputs travel with the context
    saved = result.run_dir / "outputs" / "1.1" / "primary-1.stdout"
    assert json.loads(saved.read_text()) == shell  # the captured output is kept as locally


def test_a_failing_command_goes_down_the_ladder_with_the_same_events_as_locally(
        tmp_path: Path, cluster: str) -> None:
    ladder = step(1, command="echo trying; exit 75", retry_on_exit_codes=[75], max_retries=1,
                  backups=[{"command": "exit 4"}, {"command": "echo backup 2 done"}])
    flows = []
    for name, backend in (("local", None), ("remote", DaskBackend(cluster))):
        folder = make_spec(tmp_path, name, [ladder, step(2, command="echo after")])
        result, events = run_spec(folder, backend)
        assert (result.exit_code, result.goal) == (0, "ACHIEVED")
        flows.append([(e.name, getattr(e, "step", None), getattr(e, "method", None),
                       getattr(e, "backup", None), getattr(e, "attempt", None),
                       getattr(e, "outcome", None), getattr(e, "failure_reason", None),
                       getattr(e, "transient", None)) for e in events
                      if e.name not in ("run-opened", "validation-summary")])
    local, remote = flows
    assert remote == local
    names = [f[0] for f in remote]
    assert names.count("retry-scheduled") == 1 and names.count("backup-triggered") == 2
    assert ("attempt-ended", "1.1", "backup_2", None, 1, "success", None, False) in remote


def test_a_timeout_kills_the_remote_command(tmp_path: Path, cluster: str) -> None:
    pidfile = tmp_path / "sleeper.pid"
    folder = make_spec(tmp_path, "slow", [step(
        1, command=f"sleep 30 & echo $! > {pidfile}; wait", timeout_seconds=1, max_retries=0,
        critical_flag=False)])
    began = time.monotonic()
    result, events = run_spec(folder, DaskBackend(cluster))
    assert time.monotonic() - began < 15
    ended = attempts(events)[("1.1", "primary", 1)]
    assert ended.outcome == "failure" and ended.transient
    assert ended.failure_reason.startswith("timed out after 1 s; the process group was killed")
    assert wait_dead(int(pidfile.read_text()))  # the whole group, the shell's child too
    assert result.state.steps["1.1"].status == "failed"


def test_abort_siblings_kills_a_command_running_on_a_worker(tmp_path: Path,
                                                            cluster: str) -> None:
    pidfile = tmp_path / "sibling.pid"
    folder = make_spec(tmp_path, "siblings", [
        step(1, command=f"while [ ! -s {pidfile} ]; do sleep 0.05; done; exit 1",
             max_retries=0, timeout_seconds=20),
        step(2, command=f"sleep 30 & echo $! > {pidfile}; wait", depends_on=[],
             critical_flag=False)],
        execution="parallel_enabled = true")
    began = time.monotonic()
    result, _ = run_spec(folder, DaskBackend(cluster))
    assert time.monotonic() - began < 15  # not the sibling's 30 s
    assert result.state.steps["1.1"].status == "failed"
    assert "cancelled" in (result.state.steps["1.2"].message or "")
    assert wait_dead(int(pidfile.read_text()))


def test_cancelling_an_attempt_kills_its_command_on_the_worker(tmp_path: Path,
                                                              cluster: str) -> None:
    folder = make_spec(tmp_path, "cancel", [step(1, command="true")])
    loaded = load_spec(folder)
    spec = loaded.require()
    task, first = spec.tasks[0], spec.tasks[0].steps[0]
    pidfile = tmp_path / "cancel.pid"
    action = Action(command=f"sleep 30 & echo $! > {pidfile}; wait")
    ctx = StepContext(spec=spec, task=task, step=first, ref="1.1", method="primary",
                      attempt=1, workspace=folder, spec_folder=folder, timeout=60)

    async def scenario() -> None:
        async with DaskBackend(cluster) as backend:
            running = asyncio.ensure_future(backend.executors()["command"](action, ctx))
            pid = int(await asyncio.to_thread(wait_file, pidfile))
            async with DaskBackend(cluster):  # another engine connects (and leaves) meanwhile
                pass
            await asyncio.sleep(0.5)
            assert alive(pid) and not running.done()  # ... and stops nothing of ours
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running

    asyncio.run(scenario())
    assert wait_dead(int(pidfile.read_text()))


def test_a_dead_worker_is_a_transient_failure_the_engine_retries(tmp_path: Path,
                                                                 cluster: str) -> None:
    folder = make_spec(tmp_path, "dies", [step(1, callable="steps:die_once", max_retries=1)])
    result, events = run_spec(folder, DaskBackend(cluster))
    assert (result.exit_code, result.goal) == (0, "ACHIEVED")
    first = attempts(events)[("1.1", "primary", 1)]
    assert first.outcome == "error" and first.transient
    assert "worker running the attempt died" in first.failure_reason
    assert [e.name for e in events].count("retry-scheduled") == 1  # the engine's backoff
    assert attempts(events)[("1.1", "primary", 2)].outcome == "success"


def test_a_worker_killed_hard_takes_its_commands_with_it(tmp_path: Path,
                                                         cluster: str) -> None:
    # the worker's watchdog (specs.executors.watchdog) ends what the worker started
    pidfile, shellfile = tmp_path / "sleeper.pid", tmp_path / "shell.pid"
    folder = make_spec(tmp_path, "killed", [step(
        1, command=f"echo $PPID > {shellfile}; sleep 60 & echo $! > {pidfile}; wait",
        max_retries=0, critical_flag=False)])
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(run_spec(folder, DaskBackend(cluster))))
    runner.start()
    try:
        sleeper, worker = int(wait_file(pidfile)), int(wait_file(shellfile))
        assert worker in worker_pids(cluster) and alive(sleeper)
        os.kill(worker, signal.SIGKILL)
        assert wait_dead(sleeper, within=2.0)
    finally:
        runner.join(60)
    _result, events = done[0]
    ended = attempts(events)[("1.1", "primary", 1)]
    assert ended.transient and "worker running the attempt died" in ended.failure_reason


def test_an_attempt_left_with_no_worker_gives_up_as_a_transient_error(tmp_path: Path) -> None:
    folder = make_spec(tmp_path, "alone", [step(1, command="true")])
    spec = load_spec(folder).require()
    ctx = StepContext(spec=spec, task=spec.tasks[0], step=spec.tasks[0].steps[0], ref="1.1",
                      method="primary", attempt=1, workspace=folder, spec_folder=folder)

    async def scenario() -> Outcome:
        async with distributed.LocalCluster(n_workers=1, processes=False, asynchronous=True,
                                            dashboard_address="127.0.0.1:0") as small:
            backend = DaskBackend(small.scheduler_address, no_workers_timeout=1)
            async with backend:
                assert backend.client is not None
                await backend.client.retire_workers()  # the cluster loses its only worker
                return await backend.executors()["command"](Action(command="true"), ctx)

    began = time.monotonic()
    outcome = asyncio.run(scenario())
    assert (outcome.status, outcome.transient) == ("error", True)
    assert outcome.failure_reason.endswith("has had no worker for 1 s")
    assert time.monotonic() - began < 20


# -- the worker's side, called directly ------------------------------------------------------


def test_each_spec_folder_gets_its_own_steps_module_and_each_run_a_fresh_one(
        tmp_path: Path) -> None:
    def attempt(folder: Path, run_id: str) -> Any:
        spec = load_spec(folder).require()
        ctx = StepContext(spec=spec, task=spec.tasks[0], step=spec.tasks[0].steps[0],
                          ref="1.1", method="primary", attempt=1, workspace=folder,
                          spec_folder=folder, run_id=run_id)
        outcome = run_attempt_remote(RemoteAttempt(
            run_python, Action(callable="steps:who"), ctx, f"k-{run_id}"))
        return outcome.output

    folders = []
    for name in ("one", "two"):
        folder = make_spec(tmp_path, name, [step(1, callable="steps:who")])
        (folder / "steps.py").write_text(f"def who(ctx):\n    return {name!r}\n")
        folders.append(folder)
    try:
        assert attempt(folders[0], "r1") == "one"
        assert attempt(folders[1], "r2") == "two"  # not the "steps" imported first
        (folders[0] / "steps.py").write_text("def who(ctx):\n    return 'one, edited'\n")
        assert attempt(folders[0], "r3") == "one, edited"  # a new run sees the new code
    finally:
        sys.modules.pop("steps", None)
        for folder in folders:
            while str(folder) in sys.path:
                sys.path.remove(str(folder))


def test_outcomes_travel_back_and_boundary_errors_are_transient() -> None:
    outcome = portable_outcome(Outcome("ok", output={"lock": __import__("threading").Lock()}))
    assert outcome.ok and outcome.output.startswith("{'lock': <unlocked _thread.lock")
    lost = boundary_outcome(distributed.comm.CommClosedError("closed"), "tcp://h:8786")
    assert (lost.status, lost.transient) == ("error", True)
    assert "lost the connection to the Dask cluster at tcp://h:8786" in lost.failure_reason
    worker = SimpleNamespace(address="tcp://w:1")
    died = boundary_outcome(distributed.KilledWorker("k", worker, 0), "x")
    assert died.transient
    assert died.failure_reason == "the Dask worker running the attempt died or was lost (tcp://w:1)"


# -- the command line ---------------------------------------------------------------------


def test_cli_backend_dask_starts_a_local_cluster(tmp_path: Path) -> None:
    folder = make_spec(tmp_path, "cli", [step(1, command=PROBE), step(2, callable="steps:where")])
    proc = cli("run", folder, "--backend", "dask", "--no-input", "--json", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    ended = {(e["step"]): e for e in map(json.loads, out.splitlines())
             if e["event"] == "attempt-ended"}
    assert ended["1.1"]["output"]["step"] == "1.1"
    assert proc.pid not in (ended["1.1"]["output"]["ppid"], ended["1.2"]["output"]["pid"])


def test_cli_ctrl_c_kills_the_remote_command_and_resume_finishes(tmp_path: Path,
                                                                 cluster: str) -> None:
    pidfile, flag = tmp_path / "long.pid", tmp_path / "done.flag"
    folder = make_spec(tmp_path, "ctrlc", [step(1, command=(
        f"if [ -f {flag} ]; then echo resumed; else sleep 30 & echo $! > {pidfile}; wait; fi"))])
    state = tmp_path / "state"
    proc = cli("run", folder, "--backend", "dask", "--no-input", "--state-dir", state,
               cwd=tmp_path)
    pid = int(wait_file(pidfile, proc=proc))
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the engine *and* its local workers get it
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err  # the workers leave the interrupt to the engine
    assert "specs: interrupted; continue with `specs resume" in err
    assert wait_dead(pid)
    # resumed on another cluster (the fixture's scheduler): the step runs again and finishes
    flag.touch()
    resumed = cli("resume", "last", "--backend", "dask", "--scheduler", cluster, "--no-input",
                  "--state-dir", state, cwd=tmp_path)
    _, err = resumed.communicate(timeout=30)
    assert resumed.returncode == 0, err
    assert "goal ACHIEVED" in err


def test_cli_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = make_spec(tmp_path, "nowhere", [step(1, command="true")])
    proc = cli("run", folder, "--backend", "dask", "--scheduler", f"tcp://127.0.0.1:{port}",
               "--state-dir", tmp_path / "state", cwd=tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"specs: error: cannot reach the Dask scheduler at "
                          f"tcp://127.0.0.1:{port}")
    assert not (tmp_path / "state").exists()  # nothing ran, nothing was recorded


@pytest.mark.parametrize(("backend", "scheduler", "message"), [
    ("local", "tcp://127.0.0.1:1", "--scheduler is for --backend dask"),
    ("spark", None, "--backend 'spark': use one of local, dask"),
    (None, "tcp://127.0.0.1:x", "is not an address like tcp://HOST:8786"),
])
def test_backend_options_are_checked_before_anything_runs(backend: str | None,
                                                          scheduler: str | None,
                                                          message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        backends.select(backend, scheduler)
    assert backends.select(None, None) is None  # the default: attempts run in the engine
