"""A throwaway PostgreSQL server for the tests and the harness.

:func:`throwaway_server` runs ``initdb`` in a new temporary directory, starts the server on a
free port of 127.0.0.1 with its Unix socket in that directory, yields a ``postgresql://`` URL,
and stops the server (``pg_ctl -m fast``) and removes the directory when the ``with`` block
ends, however it ends.

The server refuses to run as root, and development machines and CI often are root: then every
server command runs through ``runuser -u postgres --`` and the directory is handed to that
user. On Windows ``pg_ctl`` drops administrator rights itself. The binaries come from
``PGBIN`` (set on GitHub's Windows runners) or ``PATH``.

Everything that asks the operating system something goes through a :class:`ServerHost`, so
the root and Windows command lines are built, and tested, anywhere with a fake host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from queue_core.location import RealSystemProbe

__all__ = [
    "PostgresTools",
    "PostgresUnavailableError",
    "RealServerHost",
    "ServerHost",
    "find_postgres",
    "must_have_postgres",
    "throwaway_server",
]

SERVER_USER = "postgres"
"""The unprivileged system user a root process runs the server as, and the superuser's name."""

# Settings for a server that only tests use: durability buys nothing when the data directory
# is deleted at the end, and fsync dominates the cost of small transactions.
TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}

_START_ATTEMPTS = 3  # a free port can be taken by someone else between the probe and the start
_PG_CTL_TIMEOUT_S = 60


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL's server binaries, or the user to run them as, are not on this machine.

    ``reason`` is one line saying what is missing and how to provide it.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ServerHost(Protocol):
    """The operating-system questions the launcher asks; a fake one makes them testable."""

    def os_name(self) -> str:
        """Return ``"windows"``, ``"linux"``, ``"darwin"`` or another lower-case platform name."""
        ...

    def is_root(self) -> bool:
        """Return True when the process runs as root (never on Windows)."""
        ...

    def environ(self) -> Mapping[str, str]:
        """Return the process environment (``PGBIN`` is read from it)."""
        ...

    def which(self, name: str, path: str | None = None) -> str | None:
        """Return the full path of program ``name`` on ``path`` (default ``PATH``), or None."""
        ...

    def user_exists(self, name: str) -> bool:
        """Return True if the system user ``name`` exists."""
        ...

    def give_to(self, path: Path, user: str) -> None:
        """Make ``user`` the owner of directory ``path`` (only called when root)."""
        ...


class RealServerHost:
    """The :class:`ServerHost` that asks the running operating system."""

    def os_name(self) -> str:
        """Return the running OS as ``"windows"``, ``"linux"``, ``"darwin"`` or sys.platform."""
        return RealSystemProbe().os_name()

    def is_root(self) -> bool:
        """Return ``os.geteuid() == 0``; False where there is no ``geteuid`` (Windows)."""
        geteuid = getattr(os, "geteuid", None)
        return geteuid is not None and geteuid() == 0

    def environ(self) -> Mapping[str, str]:
        """Return ``os.environ``."""
        return os.environ

    def which(self, name: str, path: str | None = None) -> str | None:
        """Return ``shutil.which(name, path=path)``."""
        return shutil.which(name, path=path)

    def user_exists(self, name: str) -> bool:
        """Look ``name`` up in the password database; False where there is none (Windows)."""
        try:
            import pwd
        except ImportError:  # pragma: no cover - Windows
            return False
        try:
            pwd.getpwnam(name)
        except KeyError:
            return False
        return True

    def give_to(self, path: Path, user: str) -> None:
        """``chown user path``."""
        shutil.chown(path, user=user)


@dataclass(frozen=True)
class PostgresTools:
    """Where the server programs are, and how to run them.

    ``prefix`` goes before every server command: ``runuser -u postgres --`` when root, else
    nothing. ``owner`` is the user the data directory must belong to (None: the current one).
    """

    initdb: str
    pg_ctl: str
    prefix: tuple[str, ...] = ()
    owner: str | None = None

    def initdb_command(self, data_dir: Path) -> list[str]:
        """The ``initdb`` command line for a trust-authenticated cluster in ``data_dir``.

        ``--no-sync`` because the cluster is thrown away, ``--no-locale`` so that sorting and
        the default encoding do not depend on the machine.
        """
        return [
            *self.prefix,
            self.initdb,
            "-D",
            str(data_dir),
            "-A",
            "trust",
            "-U",
            SERVER_USER,
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]

    def start_command(self, data_dir: Path, log_file: Path) -> list[str]:
        """Start the server in ``data_dir`` and wait until it accepts connections."""
        return [
            *self.prefix,
            self.pg_ctl,
            "-D",
            str(data_dir),
            "-l",
            str(log_file),
            "-t",
            str(_PG_CTL_TIMEOUT_S),
            "-w",
            "start",
        ]

    def stop_command(self, data_dir: Path, mode: str = "fast") -> list[str]:
        """Stop the server in ``data_dir``: ``fast`` rolls back open transactions and ends."""
        return [
            *self.prefix,
            self.pg_ctl,
            "-D",
            str(data_dir),
            "-m",
            mode,
            "-t",
            str(_PG_CTL_TIMEOUT_S),
            "-w",
            "stop",
        ]


def find_postgres(host: ServerHost | None = None) -> PostgresTools:
    """Locate ``initdb`` and ``pg_ctl`` (in ``PGBIN`` first, then on ``PATH``).

    :raises PostgresUnavailableError: a program is missing, or the process is root and there
        is no ``runuser`` or no ``postgres`` user to run the server as.
    """
    host = host or RealServerHost()
    pgbin = host.environ().get("PGBIN")
    found: dict[str, str] = {}
    for name in ("initdb", "pg_ctl"):
        path = (host.which(name, pgbin) if pgbin else None) or host.which(name)
        if path is None:
            where = f"PGBIN ({pgbin}) or PATH" if pgbin else "PATH (or set PGBIN)"
            raise PostgresUnavailableError(
                f"PostgreSQL is not installed: no {name} on {where}; install the PostgreSQL "
                "server or set PRISMQ_TEST_POSTGRES_URL"
            )
        found[name] = path
    if not host.is_root():
        return PostgresTools(found["initdb"], found["pg_ctl"])
    runuser = host.which("runuser")
    if runuser is None or not host.user_exists(SERVER_USER):
        missing = "runuser" if runuser is None else f"a {SERVER_USER!r} system user"
        raise PostgresUnavailableError(
            f"PostgreSQL refuses to run as root and this machine has no {missing} to run it "
            "as; run as another user or set PRISMQ_TEST_POSTGRES_URL"
        )
    return PostgresTools(
        found["initdb"],
        found["pg_ctl"],
        prefix=(runuser, "-u", SERVER_USER, "--"),
        owner=SERVER_USER,
    )


def server_settings(
    port: int, socket_dir: Path | None, extra: Mapping[str, str] = TEST_SETTINGS
) -> dict[str, str]:
    """The ``postgresql.conf`` lines of a throwaway server: loopback only, on ``port``.

    ``socket_dir`` None (Windows) turns the Unix socket off.
    """
    settings = {
        "port": str(port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": _quote(str(socket_dir)) if socket_dir else "''",
        "max_connections": "100",
    }
    settings.update(extra)
    return settings


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def throwaway_server(
    host: ServerHost | None = None,
    *,
    settings: Mapping[str, str] = TEST_SETTINGS,
    tools: PostgresTools | None = None,
) -> Iterator[str]:
    """Run a fresh PostgreSQL server for the duration of the ``with`` block.

    Yields ``postgresql://postgres@127.0.0.1:PORT/postgres`` (trust authentication, loopback
    only). ``settings`` are added to ``postgresql.conf``; the default turns durability off,
    which is right for tests and wrong for measuring commit cost (pass ``{}`` then).

    :raises PostgresUnavailableError: the server programs are missing (see :func:`find_postgres`).
    :raises RuntimeError: ``initdb`` or the server failed; the message ends with its output.
    """
    host = host or RealServerHost()
    tools = tools or find_postgres(host)
    root = Path(tempfile.mkdtemp(prefix="prismq-pg-"))
    try:
        if tools.owner:
            host.give_to(root, tools.owner)
        data_dir, log_file = root / "data", root / "server.log"
        _run(tools.initdb_command(data_dir), root, "initdb")
        socket_dir = None if host.os_name() == "windows" else root
        url = _start(tools, host, data_dir, log_file, socket_dir, settings)
        try:
            yield url
        finally:
            _stop(tools, data_dir, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(
    tools: PostgresTools,
    host: ServerHost,
    data_dir: Path,
    log_file: Path,
    socket_dir: Path | None,
    settings: Mapping[str, str],
) -> str:
    conf = data_dir / "postgresql.conf"
    original = conf.read_text(encoding="utf-8")
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = free_port()
        # Settings go into postgresql.conf rather than pg_ctl's -o: no quoting of a command
        # line inside a command line, which differs between cmd.exe and POSIX shells. Later
        # lines win, so the ones appended here override initdb's.
        lines = [
            f"{key} = {value}" for key, value in server_settings(port, socket_dir, settings).items()
        ]
        conf.write_text(
            original + "\n# throwaway server\n" + "\n".join(lines) + "\n", encoding="utf-8"
        )
        try:
            _run(tools.start_command(data_dir, log_file), data_dir.parent, "pg_ctl start")
        except RuntimeError:
            # pg_ctl may give up while the postmaster still runs; make sure it does not.
            _stop(tools, data_dir, data_dir.parent)
            if attempt == _START_ATTEMPTS:
                raise
            continue
        return f"postgresql://{SERVER_USER}@127.0.0.1:{port}/postgres"
    raise AssertionError("unreachable")  # pragma: no cover


def _stop(tools: PostgresTools, data_dir: Path, cwd: Path) -> None:
    """Stop the server; an unclean stop is escalated to ``immediate``."""
    if not (data_dir / "postmaster.pid").exists():
        return
    try:
        _run(tools.stop_command(data_dir, "fast"), cwd, "pg_ctl stop")
    except RuntimeError:
        _run(tools.stop_command(data_dir, "immediate"), cwd, "pg_ctl stop -m immediate")


def _run(command: list[str], cwd: Path, what: str) -> None:
    # cwd: the server user may not be allowed into the caller's working directory. Output goes
    # to a file, not a pipe: on Windows the server started by pg_ctl can inherit the handle,
    # and a pipe would then stay open (and this call wait) for as long as the server runs.
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as output:
        returncode = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
        output.seek(0)
        text = output.read().strip()
    if returncode != 0:
        log = cwd / "server.log"
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(
            f"{what} failed with exit code {returncode}: {text}"
            + (f"\nserver log:\n{tail}" if tail else "")
        )


def must_have_postgres(environ: Mapping[str, str]) -> bool:
    """Whether a missing PostgreSQL is a failure rather than a reason to leave the tier out.

    ``PRISMQ_REQUIRE_POSTGRES`` (set by ``.ci/run``) always requires it. On CI (``CI`` set, as
    GitHub Actions does) the tier must run too, unless ``PRISMQ_ALLOW_NO_POSTGRES`` is set to a
    non-empty value for a runner without PostgreSQL.
    """
    if environ.get("PRISMQ_REQUIRE_POSTGRES"):
        return True
    return "CI" in environ and not environ.get("PRISMQ_ALLOW_NO_POSTGRES")
