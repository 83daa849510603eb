"""The python executor: ``callable = "package.module:function"``, called with the step context.

The module is imported with the spec folder first on ``sys.path`` (so a ``steps.py`` beside the
spec works). An ``async def`` is awaited on the engine's loop; a plain function runs inline when
the step sets no timeout, and in a worker thread when it does (the engine stops waiting at the
timeout; a thread cannot be killed, so the function's work may finish in the background).

What the function returns becomes the outcome: an :class:`~specs.executors.base.Outcome` as is;
``None`` or ``True`` success; ``False`` failure; a ``dict``/``list`` a structured output; anything
else its text. An exception is a failed attempt whose reason is the exception, never a crash;
``TimeoutError``/``ConnectionError`` count as transient.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import traceback
from collections.abc import Callable
from typing import Any

from specs.executors.base import Outcome, StepContext
from specs.model import Action

_CACHE: dict[tuple[str, str], Callable[..., Any]] = {}


def resolve(target: str, folder: str) -> Callable[..., Any]:
    """Import ``module:function`` (cached); raises ImportError/AttributeError/ValueError."""
    key = (target, folder)
    found = _CACHE.get(key)
    if found is not None:
        return found
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"callable {target!r} is not 'module:function'")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    _CACHE[key] = obj
    return obj  # type: ignore[no-any-return]


async def run_python(action: Action, ctx: StepContext) -> Outcome:
    if not action.callable:
        return Outcome("error", failure_reason="no callable to call")
    try:
        func = resolve(action.callable, str(ctx.spec_folder))
    except Exception as exc:  # any import problem is the step's error
        return Outcome("error", failure_reason=f"cannot import {action.callable}: "
                       f"{exc.__class__.__name__}: {exc}")
    try:
        if inspect.iscoroutinefunction(func):
            result = await asyncio.wait_for(func(ctx), ctx.timeout)
        elif ctx.timeout is None:
            result = func(ctx)
            if inspect.isawaitable(result):
                result = await result
        else:
            result = await asyncio.wait_for(asyncio.to_thread(func, ctx), ctx.timeout)
    except TimeoutError:
        return Outcome("failed", failure_reason=f"timed out after {ctx.timeout:g} s",
                       transient=True)
    except Exception as exc:  # the callable's failure, recorded, never raised
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome("failed", failure_reason=f"{exc.__class__.__name__}: {exc} "
                       f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})",
                       transient=isinstance(exc, TimeoutError | ConnectionError),
                       stderr=traceback.format_exc(limit=5))
    return to_outcome(result)


def to_outcome(result: Any) -> Outcome:
    if isinstance(result, Outcome):
        return result
    if result is None or result is True:
        return Outcome("ok")
    if result is False:
        return Outcome("failed", failure_reason="the callable returned False")
    if isinstance(result, dict | list):
        return Outcome("ok", output=result)
    return Outcome("ok", text=str(result), output=result)
