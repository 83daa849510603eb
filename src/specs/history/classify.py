"""Failure classes: what kind of failure an attempt ended with, as one short name.

Insights group failures by class (which ones never recover on a retry, which are timeouts),
so the class is kept with each attempt. It is drawn from what the attempt-ended event says:
the outcome, the expected-output verdict, the exit code and the reason text the executors and
checks write (:mod:`specs.executors.command`, :mod:`specs.engine.checks`).

========================  =====================================================================
class                     when
========================  =====================================================================
``timeout``               the attempt ran past its ``timeout_seconds``
``command_not_found``     exit code 127 (the shell found no such command)
``not_executable``        exit code 126
``signal``                the process was killed by a signal
``missing_file``          an ``expected_files`` path is missing or empty, or a file or
                          folder the attempt needed does not exist
``schema``                the structured output does not satisfy ``output_schema``
``verify``                a ``verify`` command failed
``mismatch``              another expected-output mismatch (the LLM judge said so)
``exit_<n>``              the command exited with code n (n not 0, 126 or 127)
``transient``             any other failure marked transient (rate limits, provider 5xx)
``error``                 the attempt could not run (no executor, an executor error)
``failure``               anything else
========================  =====================================================================
"""

from __future__ import annotations

__all__ = ["CLASSES", "failure_class"]

CLASSES = ("timeout", "command_not_found", "not_executable", "signal", "missing_file", "schema",
           "verify", "mismatch", "exit_<n>", "transient", "error", "failure")

_MISSING = ("expected file missing", "does not exist", "no such file", "not found")


def failure_class(outcome: str | None, verdict: str | None, reason: str | None,
                  exit_code: int | None, transient: bool) -> str | None:
    """The class of a failed attempt (None for a success or an attempt that never ended)."""
    if outcome is None or outcome == "success":
        return None
    text = (reason or "").lower()
    if text.startswith("timed out") or "timed out)" in text:
        return "timeout"
    if exit_code == 127 or text.startswith("command not found"):
        return "command_not_found"
    if exit_code == 126 or text.startswith("not executable"):
        return "not_executable"
    if text.startswith("killed by signal"):
        return "signal"
    if any(part in text for part in _MISSING):
        return "missing_file"
    if "output_schema" in text or text.startswith("no structured output"):
        return "schema"
    if text.startswith("verify `"):
        return "verify"
    if verdict == "mismatch" and exit_code in (None, 0):
        return "mismatch"
    if exit_code not in (None, 0):
        return f"exit_{exit_code}"
    if transient:
        return "transient"
    if outcome == "error":
        return "error"
    return "failure"
