"""What a dashboard serves and to whom: :class:`DashboardConfig`.

The dashboard listens on 127.0.0.1 unless told otherwise; any other address needs a token
(``--token`` or ``SPECS_DASHBOARD_TOKEN``), because the pages show what runs do and the
actions answer their gates. With a token every request must carry it (the reads, the
server-sent events, the actions); without one (loopback only) the reads are open to the
machine's own users and the actions still need the server's *action token*, a random value
written into the pages it serves, so that no other site can post to it (see
:mod:`specs.dashboard.security`).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from specs.errors import UsageError

__all__ = ["ENV_TOKEN", "DashboardConfig", "is_loopback"]

ENV_TOKEN = "SPECS_DASHBOARD_TOKEN"
#: the shortest token accepted: a guessable one would make the check worthless
MIN_TOKEN = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class DashboardConfig:
    """One dashboard's settings (``specs dashboard``'s options)."""

    state_dir: Path
    """The state folder whose runs are shown (``--state-dir``, else as ``specs runs`` finds it)."""
    database_url: str | None = None
    """The history database (``--database-url``, ``SPECS_DATABASE_URL``, else the state
    folder's ``history.db`` when it exists)."""
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    """Required on every request when set (``--token``, ``SPECS_DASHBOARD_TOKEN``)."""
    action_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """What an action (a POST) must carry: the token when there is one, else a random value
    written into the served pages (:meth:`make` keeps it in the state folder, so that it
    outlives a restart)."""
    poll_s: float = 0.05
    """How often a followed run's event log is looked at (a stat; read only when it grew)."""
    heartbeat_s: float = 15.0
    """A comment line on every open event stream this often, so proxies keep it open."""
    history_poll_s: float | None = None
    """How often the history database is asked whether its runs changed: every 2 s by
    default, every 15 s while PostgreSQL's notifications are heard (they tell at once; the
    poll is the fallback). At least 2 s."""

    def __post_init__(self) -> None:
        if self.token:
            self.action_token = self.token

    @staticmethod
    def stable_action_token(state_dir: Path) -> str | None:
        """The state folder's own action token (``<state dir>/dashboard.secret``, readable
        by its owner only), made the first time: a dashboard started again keeps it, so the
        pages a browser still has open can act. None when the folder cannot hold it."""
        path = state_dir / "dashboard.secret"
        try:
            found = path.read_text().strip()
            if len(found) >= MIN_TOKEN:
                return found
        except OSError:
            pass
        value = secrets.token_urlsafe(24)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(value + "\n")
        except OSError:
            return None
        return value

    @classmethod
    def make(cls, state_dir: Path, *, host: str = "127.0.0.1", port: int = 8765,
             token: str | None = None, database_url: str | None = None) -> DashboardConfig:
        """The settings of ``specs dashboard``, checked: a token (given, else from
        ``SPECS_DASHBOARD_TOKEN``) is required for any address but the loopback, and must be
        at least 16 characters. Raises UsageError otherwise."""
        token = token or os.environ.get(ENV_TOKEN) or None
        if token is not None and len(token) < MIN_TOKEN:
            raise UsageError(f"the dashboard token is {len(token)} characters long; use at "
                             f"least {MIN_TOKEN} (e.g. `python3 -c 'import secrets; "
                             "print(secrets.token_urlsafe(24))'`)")
        if not is_loopback(host) and token is None:
            raise UsageError(f"--host {host} serves the dashboard beyond this machine: give "
                             f"--token TOKEN (or set {ENV_TOKEN}); every request must then "
                             "carry it")
        made = cls(state_dir=state_dir, database_url=database_url, host=host, port=port,
                   token=token)
        if token is None:
            made.action_token = cls.stable_action_token(state_dir) or made.action_token
        return made
