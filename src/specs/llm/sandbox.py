"""What an agent's tools may not touch, and the optional confinement of its commands.

**Protected paths** (:class:`Protected`). A run's own files are never the agent's to change,
even when they lie inside the workspace (``specs run .`` from the spec folder puts the state
folder ``.specs/`` there):

- *hidden*: the state folder (``.specs/`` or ``--state-dir``: the event logs, locks, step
  outputs, cassettes, the cache, the history). ``read_file`` and ``write_file`` refuse it and
  ``list_files`` leaves it out: what is in it is the engine's record of the run, and reading
  it would also show the agent other runs' outputs;
- *read-only*: the spec's own files (the parameters file, the Markdown, the exe file, the
  project constitution, the progress and notepad files, and those of included specs).
  ``read_file`` may read them, ``write_file`` refuses them.

**Commands** run by ``run_command`` are checked against ``[llm.tools]`` ``allow``/``deny``
(:mod:`specs.llm.commands`) and otherwise run as the user running ``specs``: they can read
and write anything that user can, outside the workspace and inside the protected paths (by
absolute paths, ``cd``, redirections, an interpreter). ``[llm.tools] sandbox = "bwrap"`` runs
each command under bubblewrap (:func:`bwrap_argv`, Linux): the whole file system read-only,
the workspace writable, ``/tmp`` a private empty folder, the state folder replaced by an empty
one, the spec's files read-only, the command's processes in their own PID namespace (they all
end with it), and with ``network = false`` no network but a private loopback. See
docs/security.md.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SANDBOXES", "Protected", "bwrap_argv", "bwrap_problem", "spec_files"]

#: the values of ``[llm.tools] sandbox``
SANDBOXES = ("none", "bwrap")


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


@dataclass(frozen=True, slots=True)
class Protected:
    """Paths (files or folders, as real paths) the agent's tools may not touch."""

    hidden: tuple[Path, ...] = ()  # neither read nor written: the run's state folder
    read_only: tuple[Path, ...] = ()  # read, never written: the spec's own files

    @classmethod
    def of(cls, hidden: Iterable[Path] = (), read_only: Iterable[Path] = ()) -> Protected:
        return cls(tuple(dict.fromkeys(_real(p) for p in hidden)),
                   tuple(dict.fromkeys(_real(p) for p in read_only)))

    @classmethod
    def for_run(cls, loaded: Any, state_dir: Path | None) -> Protected:
        """The state folder hidden, the files of ``loaded`` (a
        :class:`~specs.spec.load.LoadedSpec`, or None) read-only."""
        return cls.of([state_dir] if state_dir is not None else [],
                      spec_files(loaded) if loaded is not None else [])

    def refusal(self, real: Path, *, write: bool) -> str | None:
        """Why a tool may not read (or, with ``write``, write) the real path ``real``."""
        for path in self.hidden:
            if real == path or real.is_relative_to(path):
                return "it is in the run's state folder, which the agent's tools do not touch"
        if write and any(real == path or real.is_relative_to(path) for path in self.read_only):
            return "it is one of the spec's own files, which the agent's tools do not change"
        return None

    def hides(self, real: Path) -> bool:
        return any(real == path or real.is_relative_to(path) for path in self.hidden)


def spec_files(loaded: Any) -> list[Path]:
    """The files of a loaded spec the run reads or writes: the parameters file, the Markdown,
    the exe file, the project constitution, the progress and notepad files, and the files of
    the specs it includes."""
    found: list[Path] = []
    specs = [loaded] + [item.loaded for item in (loaded.composition.included
                                                 if loaded.composition is not None else [])]
    for one in specs:
        found += [p for p in (one.parameters_path, one.markdown_path, one.exe_path) if p]
        if one.project is not None:
            found.append(one.project.path)
    if loaded.spec is not None:
        found += [loaded.progress_path, loaded.notepad_path]
    return found


def bwrap_argv(argv: list[str], root: Path, protected: Protected, *,
               network: bool = True) -> list[str]:
    """``argv`` run under bubblewrap, confined as the module docstring says."""
    wrapped = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--tmpfs", "/tmp", "--bind", str(root), str(root)]
    for path in protected.hidden:
        if path.is_dir():
            wrapped += ["--tmpfs", str(path)]
        elif path.exists():
            wrapped += ["--ro-bind", "/dev/null", str(path)]
    for path in protected.read_only:
        if path.exists() and not protected.hides(path):
            wrapped += ["--ro-bind", str(path), str(path)]
    if not network:
        wrapped.append("--unshare-net")
    return [*wrapped, "--unshare-pid", "--die-with-parent", "--chdir", str(root), "--", *argv]


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot confine commands here (one line), or None (checked once)."""
    if shutil.which("bwrap") is None:
        return ("[llm.tools] sandbox = \"bwrap\": bwrap is not installed (Debian/Ubuntu: "
                "apt-get install bubblewrap; Fedora: dnf install bubblewrap)")
    try:
        done = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--", "true"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"[llm.tools] sandbox = \"bwrap\": bwrap does not run here: {exc}"
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[:200]
        return (f"[llm.tools] sandbox = \"bwrap\": bwrap does not run here ({said or 'exit '}"
                f"{'' if said else done.returncode}); user namespaces may be disabled")
    return None
