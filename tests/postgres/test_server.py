"""The throwaway server itself: it starts, survives a taken port, and leaves nothing behind.

Each test starts its own server (about a second or two), apart from the session's one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from bench import postgres_server
from bench.postgres_server import free_port, throwaway_server

pytestmark = pytest.mark.slow


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.usefixtures("postgres_server_url")  # left out, or failing, as the tier is
def test_the_server_runs_and_leaves_no_process_or_file(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first port offered is taken: the launcher must try another one.
    offered = iter([taken_port, free_port(), free_port(), free_port()])
    monkeypatch.setattr(postgres_server, "free_port", lambda: next(offered))
    with throwaway_server() as url:
        assert f":{taken_port}/" not in url
        with psycopg.connect(url, autocommit=True) as conn:
            data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        postmaster = int((data_dir / "postmaster.pid").read_text(encoding="utf-8").split()[0])
        assert psutil.pid_exists(postmaster)
    assert not data_dir.parent.exists()
    try:
        state = psutil.Process(postmaster).status()
    except psutil.NoSuchProcess:
        state = "gone"
    assert state in ("gone", psutil.STATUS_ZOMBIE)  # a zombie waits for init to reap it
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)
