"""The watchdog: the processes of attempts end with the engine, even after ``kill -9``.

An engine that is killed (``kill -9``, the OOM killer, a crash) has no chance to stop the
process groups of the attempts it is running; they would run on, writing into the workspace,
until a ``specs resume`` found and killed them. So the first time the engine starts a process,
it also starts one small helper process, the watchdog (``python -I -S -c ...``, in a session of
its own), and marks every process it starts with a token in its environment
(``SPECS_WATCHDOG``; children and grandchildren inherit it). The watchdog holds the read end of
a pipe whose write end is the engine's alone (no child inherits it), so it reads end-of-file
exactly when the engine's process is gone, however it ended. It then finds the processes that
carry the token (``/proc/<pid>/environ``), sends SIGTERM to their process groups, SIGKILL half
a second later to what is left, and exits. A normal exit ends the same way, with nothing left.
The engine pays nothing per process but one more environment variable.

Why not ``PR_SET_PDEATHSIG``: it reaches only the direct child (the shell), not the commands
it starts; it fires when the *thread* that forked ends, and processes are started from worker
threads; and it needs code run between fork and exec (``preexec_fn``, unsafe with threads).

What remains: Linux only (it reads ``/proc``; elsewhere there is no watchdog); a process that
clears its environment is not found; a ``kill -9`` of the engine and the watchdog together
leaves the processes running (``specs resume`` still stops those of its run:
:func:`specs.executors.command.stop_leftovers`); MCP servers are started by the MCP SDK, not
here: they see their standard input close and are expected to exit.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

__all__ = ["MARK", "marked"]

#: the environment variable that marks the processes of one engine
MARK = "SPECS_WATCHDOG"

#: the watchdog's program (argv[1]: the token): wait for end of input, then end the marked
_PROGRAM = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
mark = ("SPECS_WATCHDOG=" + sys.argv[1]).encode()
while sys.stdin.buffer.read(4096):
    pass
def marked():
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/" + name + "/environ", "rb") as handle:
                    if mark in handle.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                pass
    return found
def send(sig):
    pids = marked()
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), sig)
        except OSError:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    return pids
if send(signal.SIGTERM):
    end = time.monotonic() + 0.5
    while time.monotonic() < end and marked():
        time.sleep(0.05)
    send(signal.SIGKILL)
"""

_LOCK = threading.Lock()
#: the engine process it serves (a forked child needs its own), its token, the watchdog
_STATE: dict[str, object] = {}


def _token() -> str | None:
    """This process's token, its watchdog started if need be (None: no watchdog here)."""
    if _STATE.get("pid") == os.getpid():
        token = _STATE.get("token")
        return token if isinstance(token, str) else None
    with _LOCK:
        if _STATE.get("pid") != os.getpid():
            _STATE.clear()
            _STATE["pid"] = os.getpid()
            _STATE["token"] = _start()
    token = _STATE.get("token")
    return token if isinstance(token, str) else None


def _start() -> str | None:
    if not Path("/proc/self/environ").exists():
        return None
    token = f"{os.getpid()}-{secrets.token_hex(8)}"
    env = {k: v for k, v in os.environ.items() if k != MARK}  # it must not find itself
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _PROGRAM, token],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    except OSError:
        return None
    _STATE["proc"] = proc  # its stdin (our end of the pipe) stays open while we live
    return token


def marked(env: Mapping[str, str]) -> Mapping[str, str]:
    """``env`` with this engine's mark, for a process it starts (as is without a watchdog)."""
    token = _token()
    if token is None:
        return env
    found = dict(env)
    found[MARK] = token
    return found
