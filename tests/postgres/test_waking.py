"""NotifyWatch: the NOTIFY of migrations 0006 and 0007 wakes a listener; a poll is the safety net.

test_notify_triggers.py drives the same triggers through the queue's own statements.
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from queue_core.postgres import schema
from queue_core.postgres.waking import NotifyWatch
from queue_core.waking import IDLE_POLL_SECONDS

WAIT_S = 10.0  # generous: the machine may be loaded


@pytest.fixture
def producer(postgres_url: str) -> Iterator[Any]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        schema.migrate(conn)
        yield conn


@pytest.fixture
def watch(postgres_url: str, producer: Any) -> Iterator[NotifyWatch]:
    made = NotifyWatch(postgres_url, safety_poll_seconds=3600.0, windows=False)
    yield made
    made.close()


def enqueue(conn: Any, status: str = "queued") -> int:
    row = conn.execute(
        "INSERT INTO task_queue (type, payload, status) VALUES ('t', '{}', %s) RETURNING id",
        (status,),
    ).fetchone()
    return int(row[0])


def readable_within(handle: int, seconds: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(handle, selectors.EVENT_READ)
        return bool(selector.select(seconds))


def test_an_enqueue_wakes_the_handle_and_mark_consumes_it(
    watch: NotifyWatch, producer: Any
) -> None:
    assert watch.changed()  # nothing marked yet: claim once
    watch.mark()
    assert not watch.changed()
    handle = watch.handle()
    assert handle is not None
    assert not readable_within(handle, 0.05)
    enqueue(producer)
    assert readable_within(handle, WAIT_S)
    assert watch.changed()
    assert watch.changed()  # stays True until the next mark
    watch.mark()
    assert not watch.changed()
    assert not readable_within(handle, 0.05)


def test_only_statements_that_queue_a_task_notify(watch: NotifyWatch, producer: Any) -> None:
    handle = watch.handle()
    assert handle is not None
    task = enqueue(producer)
    # Delivery is asynchronous: let the enqueue's notification arrive before marking.
    assert readable_within(handle, WAIT_S)
    watch.mark()
    producer.execute("UPDATE task_queue SET status = 'processing' WHERE id = %s", (task,))
    producer.execute("UPDATE task_queue SET priority = 3 WHERE id = %s", (task,))
    producer.execute("UPDATE task_queue SET status = 'completed' WHERE id = %s", (task,))
    assert not readable_within(handle, 0.3)
    assert not watch.changed()
    # Status alone: 0007's trigger watches the columns every requeue of the queue writes.
    producer.execute("UPDATE task_queue SET status = 'queued' WHERE id = %s", (task,))
    assert not readable_within(handle, 0.3)
    producer.execute("UPDATE task_queue SET status = 'processing' WHERE id = %s", (task,))
    producer.execute(
        "UPDATE task_queue SET status = 'queued', run_after_utc = now() WHERE id = %s", (task,)
    )  # as a retry does
    assert readable_within(handle, WAIT_S)
    assert watch.changed()


def test_a_batch_in_one_transaction_sends_one_notification(
    watch: NotifyWatch, producer: Any
) -> None:
    watch.mark()
    with producer.transaction():
        for _ in range(50):
            enqueue(producer)
        producer.execute("UPDATE task_queue SET status = 'processing'")
        producer.execute("UPDATE task_queue SET status = 'queued', run_after_utc = now()")
    handle = watch.handle()
    assert handle is not None and readable_within(handle, WAIT_S)
    conn = watch._conn
    assert conn is not None
    assert len(list(conn.notifies(timeout=0.5))) == 1


def test_a_rolled_back_enqueue_notifies_nobody(watch: NotifyWatch, producer: Any) -> None:
    watch.mark()
    with pytest.raises(RuntimeError), producer.transaction():
        enqueue(producer)
        raise RuntimeError("roll back")
    handle = watch.handle()
    assert handle is not None and not readable_within(handle, 0.3)
    assert not watch.changed()


def test_the_safety_poll_says_changed_without_a_notification(postgres_url: str) -> None:
    watch = NotifyWatch(postgres_url, safety_poll_seconds=0.2, windows=False)
    try:
        watch.mark()
        assert watch.poll_seconds(True) == watch.poll_seconds(False) == 0.2
        assert not watch.changed()
        time.sleep(0.25)
        assert watch.changed()
        watch.mark()
        assert not watch.changed()
    finally:
        watch.close()


def test_a_lost_listener_says_changed_and_reconnects(
    watch: NotifyWatch, producer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    watch.mark()
    conn = watch._conn
    assert conn is not None
    producer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    deadline = time.monotonic() + WAIT_S
    while watch.listening and time.monotonic() < deadline:
        watch.changed()
        time.sleep(0.02)
    assert not watch.listening
    assert watch.handle() is None
    assert watch.changed()
    assert "listening for queued tasks failed" in caplog.text
    deadline = time.monotonic() + WAIT_S
    while not watch.listening and time.monotonic() < deadline:
        watch.changed()
        time.sleep(0.05)
    assert watch.listening
    assert watch.changed()  # what was sent while it was away is lost: look once
    watch.mark()
    assert not watch.changed()
    enqueue(producer)
    handle = watch.handle()
    assert handle is not None and readable_within(handle, WAIT_S)


def test_an_unreachable_server_polls_at_the_safety_interval(postgres_url: str) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"
    watch = NotifyWatch(unreachable, safety_poll_seconds=0.5, windows=False)
    try:
        assert not watch.listening and watch.handle() is None
        assert watch.poll_seconds(False) == 0.5
        watch.mark()
        assert watch.changed()
    finally:
        watch.close()


def test_on_windows_the_watch_is_polled_without_a_round_trip(
    postgres_url: str, producer: Any
) -> None:
    watch = NotifyWatch(postgres_url, windows=True)
    try:
        assert watch.handle() is None
        assert watch.poll_seconds(False) == IDLE_POLL_SECONDS
        watch.mark()
        assert not watch.changed()
        enqueue(producer)
        deadline = time.monotonic() + WAIT_S
        while not watch.changed() and time.monotonic() < deadline:
            time.sleep(IDLE_POLL_SECONDS)
        assert watch.changed()
    finally:
        watch.close()
