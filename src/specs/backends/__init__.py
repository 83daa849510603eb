"""Where step attempts run: ``--backend local`` (this process, the default) or ``dask``.

A backend only changes *where* one attempt of one method runs. The engine keeps everything
else (scheduling, retries and backoff, backups, checks, gates, events, logs): it gets the
backend's executors (:data:`specs.executors.base.Executor`, one per execution method) and
injects them into :class:`~specs.engine.runner.Runner` as it would the local ones.

The Dask backend (:mod:`specs.backends.dask`) needs the optional dependency
``pip install 'specs-engine[dask]'``; it is imported only when ``--backend dask`` is asked for.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from specs.errors import UsageError

if TYPE_CHECKING:
    from specs.backends.dask import DaskBackend

BACKENDS = ("local", "dask")
T = TypeVar("T")


def select(backend: str | None, scheduler: str | None) -> DaskBackend | None:
    """The backend the CLI's ``--backend``/``--scheduler`` ask for (None: run locally).

    ``--scheduler`` alone implies ``--backend dask``. An address that refuses connections is a
    :class:`~specs.errors.UsageError` here, before anything runs.
    """
    name = (backend or ("dask" if scheduler else "local")).strip().lower()
    if name not in BACKENDS:
        raise UsageError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if name == "local":
        if scheduler:
            raise UsageError("--scheduler is for --backend dask; drop it to run locally")
        return None
    try:
        from specs.backends.dask import DaskBackend
    except ImportError as exc:
        raise UsageError(f"--backend dask needs Dask distributed ({exc}); install it with "
                         "`pip install 'specs-engine[dask]'`") from None
    if scheduler:
        check_reachable(scheduler)
    return DaskBackend(scheduler)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when a ``tcp://HOST:PORT`` (or ``tls://``) scheduler address
    cannot be reached; other protocols are left to the Dask client."""
    text = address.strip()
    if "://" not in text:
        text = f"tcp://{text}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UsageError(f"--scheduler {address!r} is not an address like "
                         f"tcp://HOST:8786 ({exc})") from None
    if parts.scheme not in ("tcp", "tls"):
        return
    if not host or port is None:
        raise UsageError(f"--scheduler {address!r} is not an address like tcp://HOST:8786")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or exc.__class__.__name__
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {reason}; start one "
                         "with `dask scheduler` or check the address") from None


async def run_with(backend: DaskBackend | None,
                   start: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``start()`` (the runner's start or resume) with the backend open around it."""
    if backend is None:
        return await start()
    async with backend:
        return await start()
