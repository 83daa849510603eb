"""The fault trial of bench/fault_mutations.py, importable from the tests (bench/ is no package).

``fault_mutations`` is that module; :func:`run_cli_inprocess` runs ``specs ARGS`` through the
real entry point (:func:`specs.cli.main`) in this process: (exit code, stdout, stderr).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "bench" / "fault_mutations.py"
_SPEC = importlib.util.spec_from_file_location("fault_mutations", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
fault_mutations = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("fault_mutations", fault_mutations)
_SPEC.loader.exec_module(fault_mutations)

run_cli_inprocess = fault_mutations.run_cli

__all__ = ["fault_mutations", "run_cli_inprocess"]
