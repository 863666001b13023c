"""Helpers of the PostgreSQL test tier: skip (or fail on CI) without PostgreSQL, URL per test.

A machine without PostgreSQL or psycopg leaves the tier out (deselected, or its modules not
collected) and the test summary says so in one line. On CI the tier runs anyway and fails
(see :func:`bench.postgres_server.must_have_postgres`), so a CI run cannot turn green without
running the PostgreSQL tests.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench.postgres_server import PostgresUnavailableError, find_postgres, must_have_postgres

URL_VAR = "PRISMQ_TEST_POSTGRES_URL"


def missing_client() -> str | None:
    """Why the tier cannot import psycopg, or None when it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install .[postgres])"
    return None


def missing_server() -> str | None:
    """Why the tier has no server to start or use, or None when it has one."""
    if os.environ.get(URL_VAR):
        return None
    try:
        find_postgres()
    except PostgresUnavailableError as exc:
        return exc.reason
    return None


def may_leave_out() -> bool:
    """Whether a missing PostgreSQL may leave the tier out (never on CI, unless allowed)."""
    return not must_have_postgres(os.environ)


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test or module, or fail it when CI must run the PostgreSQL tier."""
    if must_have_postgres(os.environ):
        pytest.fail(
            f"{reason}. CI must run the PostgreSQL tests "
            "(set PRISMQ_ALLOW_NO_POSTGRES=1 on a runner without PostgreSQL)",
            pytrace=False,
        )
    pytest.skip(f"PostgreSQL tier skipped: {reason}", allow_module_level=True)


def require_psycopg() -> ModuleType:
    """Import psycopg for a test module of the tier, or skip the module (fail on CI)."""
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed (pip install .[postgres])")
    return psycopg


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))
