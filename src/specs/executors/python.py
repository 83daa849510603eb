"""The python executor: ``callable = "package.module:function"``, called with the step context.

The module is imported with the spec folder first on ``sys.path`` (so a ``steps.py`` beside the
spec works). An ``async def`` is awaited on the engine's loop; a plain function runs inline when
the step sets no timeout, and in a worker thread when it does (the engine stops waiting at the
timeout; a thread cannot be killed, so the function's work may finish in the background).

What the function returns becomes the outcome: an :class:`~specs.executors.base.Outcome` as is;
``None`` or ``True`` success; ``False`` failure; a ``dict``/``list`` a structured output; anything
else its text. An exception (``sys.exit()`` too) is a failed attempt whose reason is the
exception, never a crash; ``TimeoutError``/``ConnectionError`` count as transient.
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
from specs.spec.model import Action

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
        return Outcome("error", permanent=True, failure_reason="no callable to call")
    try:
        func = resolve(action.callable, str(ctx.spec_folder))
    except (Exception, SystemExit) as exc:  # any import problem is the step's error
        return Outcome("error", permanent=True, failure_reason=f"cannot import {action.callable}: "
                       f"{_describe(exc)}")
    try:
        if ctx.timeout is None:
            result = await call_async(func, ctx)
        elif inspect.iscoroutinefunction(func):
            result = await asyncio.wait_for(call_async(func, ctx), ctx.timeout)
        else:
            result = await asyncio.wait_for(asyncio.to_thread(call_sync, func, ctx),
                                            ctx.timeout)
    except TimeoutError:  # the engine's timeout (the callable's own errors come as outcomes)
        return Outcome("failed", failure_reason=f"timed out after {ctx.timeout:g} s",
                       transient=True)
    return to_outcome(result)


async def call_async(func: Callable[..., Any], ctx: StepContext) -> Any:
    """Call ``func(ctx)`` and await what it returns if that is awaitable; what it raises
    becomes a failed :class:`Outcome`."""
    try:
        result = func(ctx)
        if inspect.isawaitable(result):
            result = await result
        return result
    except (Exception, SystemExit) as exc:  # caught here, inside a task: see failure
        return failure(exc)


def call_sync(func: Callable[..., Any], ctx: StepContext) -> Any:
    """Call ``func(ctx)``; what it raises becomes a failed :class:`Outcome`."""
    try:
        return func(ctx)
    except (Exception, SystemExit) as exc:
        return failure(exc)


def failure(exc: BaseException) -> Outcome:
    """The callable raised (or called ``sys.exit()``, which must not end the engine; asyncio
    would re-raise it from a task): a failed attempt naming the exception and where."""
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return Outcome("failed", failure_reason=f"{_describe(exc)} "
                   f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})",
                   transient=isinstance(exc, TimeoutError | ConnectionError),
                   stderr="".join(traceback.format_exception(exc, limit=5)))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


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
