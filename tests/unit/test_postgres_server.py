"""The throwaway PostgreSQL launcher's decisions, through a fake host (no server started)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from bench import postgres_server
from bench.postgres_server import (
    PostgresTools,
    PostgresUnavailableError,
    find_postgres,
    must_have_postgres,
    server_settings,
    throwaway_server,
)


class FakeHost:
    """A ServerHost whose answers the test sets."""

    def __init__(
        self,
        *,
        os_name: str = "linux",
        root: bool = False,
        environ: Mapping[str, str] | None = None,
        programs: Mapping[str, str] | None = None,
        users: tuple[str, ...] = ("postgres",),
    ) -> None:
        self._os = os_name
        self._root = root
        self._environ = dict(environ or {})
        # "dir/name" -> found only when which() searches dir; "name" -> found on PATH.
        self._programs = dict(programs or {})
        self._users = users
        self.given: list[tuple[Path, str]] = []

    def os_name(self) -> str:
        return self._os

    def is_root(self) -> bool:
        return self._root

    def environ(self) -> Mapping[str, str]:
        return self._environ

    def which(self, name: str, path: str | None = None) -> str | None:
        key = f"{path}/{name}" if path else name
        return self._programs.get(key)

    def user_exists(self, name: str) -> bool:
        return name in self._users

    def give_to(self, path: Path, user: str) -> None:
        self.given.append((path, user))


ON_PATH = {"initdb": "/usr/bin/initdb", "pg_ctl": "/usr/bin/pg_ctl", "runuser": "/sbin/runuser"}


def test_a_normal_user_runs_the_programs_directly() -> None:
    tools = find_postgres(FakeHost(programs=ON_PATH))
    assert tools == PostgresTools("/usr/bin/initdb", "/usr/bin/pg_ctl")
    data = Path("/tmp/x/data")
    assert tools.initdb_command(data)[:5] == ["/usr/bin/initdb", "-D", str(data), "-A", "trust"]
    assert tools.start_command(data, Path("/tmp/x/log"))[0] == "/usr/bin/pg_ctl"
    stop = tools.stop_command(data)
    assert stop[0] == "/usr/bin/pg_ctl" and stop[stop.index("-m") + 1] == "fast"
    assert stop[-1] == "stop"


def test_root_runs_every_server_command_as_the_postgres_user() -> None:
    tools = find_postgres(FakeHost(root=True, programs=ON_PATH))
    prefix = ["/sbin/runuser", "-u", "postgres", "--"]
    data = Path("/tmp/x/data")
    assert tools.owner == "postgres"
    assert tools.initdb_command(data)[:5] == [*prefix, "/usr/bin/initdb"]
    assert tools.start_command(data, Path("/tmp/x/log"))[:5] == [*prefix, "/usr/bin/pg_ctl"]
    assert tools.stop_command(data, "immediate")[:5] == [*prefix, "/usr/bin/pg_ctl"]


@pytest.mark.parametrize(
    ("programs", "users", "reason"),
    [
        ({k: v for k, v in ON_PATH.items() if k != "runuser"}, ("postgres",), "no runuser"),
        (ON_PATH, (), "no a 'postgres' system user"),
    ],
)
def test_root_without_a_way_to_drop_privileges_is_unavailable(
    programs: Mapping[str, str], users: tuple[str, ...], reason: str
) -> None:
    with pytest.raises(PostgresUnavailableError) as caught:
        find_postgres(FakeHost(root=True, programs=programs, users=users))
    assert "refuses to run as root" in caught.value.reason
    assert reason in caught.value.reason
    assert "\n" not in caught.value.reason


@pytest.mark.parametrize("missing", ["initdb", "pg_ctl"])
def test_missing_programs_give_one_line_saying_so(missing: str) -> None:
    programs = {k: v for k, v in ON_PATH.items() if k != missing}
    with pytest.raises(PostgresUnavailableError) as caught:
        find_postgres(FakeHost(programs=programs))
    reason = caught.value.reason
    assert reason.startswith(f"PostgreSQL is not installed: no {missing} on PATH (or set PGBIN)")
    assert "PRISMQ_TEST_POSTGRES_URL" in reason and "\n" not in reason


def test_windows_takes_the_programs_from_pgbin() -> None:
    pgbin = r"C:\Program Files\PostgreSQL\17\bin"
    host = FakeHost(
        os_name="windows",
        environ={"PGBIN": pgbin},
        programs={
            f"{pgbin}/initdb": rf"{pgbin}\initdb.exe",
            f"{pgbin}/pg_ctl": rf"{pgbin}\pg_ctl.exe",
        },
    )
    tools = find_postgres(host)
    assert tools == PostgresTools(rf"{pgbin}\initdb.exe", rf"{pgbin}\pg_ctl.exe")
    assert tools.prefix == () and tools.owner is None


def test_pgbin_without_the_programs_falls_back_to_path_and_names_both() -> None:
    host = FakeHost(environ={"PGBIN": "/opt/pg/bin"}, programs=ON_PATH)
    assert find_postgres(host).initdb == "/usr/bin/initdb"
    with pytest.raises(PostgresUnavailableError, match=r"no initdb on PGBIN \(/opt/pg/bin\) or"):
        find_postgres(FakeHost(environ={"PGBIN": "/opt/pg/bin"}))


def test_settings_listen_on_loopback_with_the_socket_in_the_directory() -> None:
    settings = server_settings(5555, Path("/tmp/it's"), {"fsync": "off"})
    assert settings["port"] == "5555"
    assert settings["listen_addresses"] == "'127.0.0.1'"
    assert settings["unix_socket_directories"] == "'/tmp/it''s'"
    assert settings["fsync"] == "off"
    assert server_settings(5555, None)["unix_socket_directories"] == "''"


@pytest.mark.parametrize(
    ("environ", "must"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "true", "PRISMQ_ALLOW_NO_POSTGRES": "1"}, False),
        ({"CI": "true", "PRISMQ_ALLOW_NO_POSTGRES": ""}, True),
        ({"PRISMQ_ALLOW_NO_POSTGRES": "1"}, False),
        ({"PRISMQ_REQUIRE_POSTGRES": "1"}, True),
        ({"CI": "true", "PRISMQ_ALLOW_NO_POSTGRES": "1", "PRISMQ_REQUIRE_POSTGRES": "1"}, True),
    ],
)
def test_ci_must_have_postgres_unless_allowed(environ: Mapping[str, str], must: bool) -> None:
    assert must_have_postgres(environ) is must


def test_no_programs_means_no_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_server.tempfile, "tempdir", str(tmp_path))
    with pytest.raises(PostgresUnavailableError), throwaway_server(FakeHost()):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="the fake initdb is a POSIX shell script")
def test_a_failing_initdb_reports_its_output_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "initdb"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'initdb: cannot be run as root' >&2\nexit 1\n", encoding="utf-8"
    )
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(postgres_server.tempfile, "tempdir", str(work))
    tools = PostgresTools(str(fake), str(fake))
    failure = pytest.raises(RuntimeError, match="initdb failed with exit code 1: initdb: cannot")
    with failure, throwaway_server(FakeHost(), tools=tools):
        pass
    assert list(work.iterdir()) == []
