"""A throwaway PostgreSQL server for the history's tests, and the ``history_url`` fixture.

:class:`PostgresServer` runs Debian's (or any) PostgreSQL binaries: ``initdb`` into a temporary
folder and ``pg_ctl start`` on a free 127.0.0.1 port (as the ``postgres`` user through
``runuser`` when the tests run as root, since ``initdb`` refuses root), with a database per
test, and stops and removes it at the end of the session.

``history_url`` is parametrised: each test that takes it runs on SQLite and on PostgreSQL.
The PostgreSQL half is skipped, with the reason in pytest's summary, only when no PostgreSQL
binaries are installed; with ``SPECS_TEST_POSTGRES=require`` (CI) their absence fails instead.

Import the fixtures into a test module:
``from history_pg import history_url_fixture, postgres_server_fixture``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE = os.environ.get("SPECS_TEST_POSTGRES") == "require"


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest, else the PATH's."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; see the module docstring."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="specs-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "specs"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stdout}{proc.stderr}{tail}")

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "log"), "-w", "-t", "60", "start")

    def restart(self) -> None:
        """Stop the server (its clients' connections are ended) and start it again on the
        same port, with the same options."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                  "-l", str(self.root / "log"), "-w", "-t", "60", "restart")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"history_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def own_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of one's own (to restart it, say): skipped (or failed, with
    ``SPECS_TEST_POSTGRES=require``) without PostgreSQL's binaries."""
    bindir = find_bindir()
    if bindir is None:
        message = ("PostgreSQL half skipped: no PostgreSQL binaries (initdb, pg_ctl) found; "
                   "`apt-get install postgresql` runs it")
        if REQUIRE:
            pytest.fail(message.replace("skipped", "required (SPECS_TEST_POSTGRES=require)"))
        pytest.skip(message)
    server = PostgresServer(bindir)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.fail(f"the PostgreSQL server did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    with own_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"], name="history_url")
def history_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty history database: SQLite in ``tmp_path``, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()
