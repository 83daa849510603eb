"""The exception tree drawn in specs/errors.py names every error class of the package."""

from __future__ import annotations

import importlib
import pkgutil

import specs
from specs import errors


def test_the_drawn_tree_names_every_specs_error() -> None:
    for info in pkgutil.walk_packages(specs.__path__, "specs."):
        if info.name.startswith("specs.backends.dask"):
            continue  # optional dependency
        importlib.import_module(info.name)
    found: set[str] = set()
    pending = [errors.SpecsError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    drawing = errors.__doc__ or ""
    assert sorted(name for name in found if name not in drawing) == []
