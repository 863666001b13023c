"""The NOTIFY triggers of migrations 0006 and 0007, driven through the queue's own statements.

Every way a task goes back to ``queued`` (a retry after a failure, the release of an expired
lease, the engine's release of unstarted tasks at shutdown, a retry by hand) must wake a
LISTENing engine; the hot paths (claim, lease renewal, completion) must send nothing and never
call the trigger function. That they do not even prepare the requeue trigger's WHEN clause
(they write none of the columns it watches) is checked on the SQL text in
tests/unit/test_postgres_sql.py. test_waking.py drives the triggers with hand-written SQL.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable, Iterator

import pytest

from queue_core import TaskQueue, TaskStatus
from queue_core.postgres.database import PostgresDatabase
from queue_core.postgres.waking import NotifyWatch
from tests.conftest import FakeClock, empty_postgres_queue

WAIT_S = 10.0  # generous: the machine may be loaded
QUIET_S = 0.3  # how long a statement that must not notify is watched
WORKER = "w1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pg(postgres_queue_url: str) -> Iterator[PostgresDatabase]:
    empty_postgres_queue(postgres_queue_url)
    db = PostgresDatabase(postgres_queue_url)
    db.initialize_schema()
    yield db
    db.close()


@pytest.fixture
def queue(pg: PostgresDatabase, clock: FakeClock) -> TaskQueue:
    return TaskQueue(pg, clock=clock, retry_backoff_seconds=0.001, retry_jitter=0.0)


@pytest.fixture
def watch(postgres_queue_url: str) -> Iterator[NotifyWatch]:
    made = NotifyWatch(postgres_queue_url, safety_poll_seconds=3600.0, windows=False)
    yield made
    made.close()


def notified_within(watch: NotifyWatch, seconds: float) -> bool:
    """Whether a notification reaches the watch within ``seconds``; it is consumed."""
    handle = watch.handle()
    assert handle is not None, "the watch lost its connection"
    with selectors.DefaultSelector() as selector:
        selector.register(handle, selectors.EVENT_READ)
        readable = bool(selector.select(seconds))
    changed = watch.changed()
    watch.mark()
    return readable and changed


def enqueued(queue: TaskQueue, watch: NotifyWatch, *max_attempts: int) -> list[int]:
    """One task per ``max_attempts`` enqueued in one statement, its notification consumed."""
    ids = queue.enqueue_many(
        [{"type": "t", "payload": {}, "max_attempts": n} for n in max_attempts]
    )
    assert notified_within(watch, WAIT_S)
    return ids


def test_claims_renewals_and_completions_send_no_notification(
    queue: TaskQueue, watch: NotifyWatch
) -> None:
    *ids, once = enqueued(queue, watch, 3, 3, 3, 3, 1)
    tasks = queue.claim(WORKER, limit=5)
    assert sorted(t.id for t in tasks) == sorted([*ids, once])
    queue.extend_lease(ids[0], WORKER, 60)
    assert queue.extend_leases([*ids, once], WORKER, 60) == []
    queue.complete(ids[0], WORKER)
    assert queue.complete_many(ids[1:], WORKER) == []
    assert queue.fail(once, WORKER, "its last attempt").status is TaskStatus.FAILED
    assert not notified_within(watch, QUIET_S)
    [queued] = enqueued(queue, watch, 3)
    queue.cancel(queued)
    assert queue.claim(WORKER) == []  # a claim that finds nothing
    assert not notified_within(watch, QUIET_S)
    queue.retry(once)  # the control: the same watch hears a task that re-enters the queue
    assert notified_within(watch, WAIT_S)


def _fail_with_attempts_left(queue: TaskQueue, clock: FakeClock, task: int) -> None:
    assert queue.fail(task, WORKER, "try again").status is TaskStatus.QUEUED


def _lease_expires(queue: TaskQueue, clock: FakeClock, task: int) -> None:
    clock.advance(120)
    assert queue.release_expired_leases() == 1


def _shutdown_release(queue: TaskQueue, clock: FakeClock, task: int) -> None:
    assert queue.release_unstarted([task], WORKER) == []


def _retry_by_hand(queue: TaskQueue, clock: FakeClock, task: int) -> None:
    assert queue.fail(task, WORKER, "the last attempt").status is TaskStatus.FAILED
    queue.retry(task)


def _retry_every_failed(queue: TaskQueue, clock: FakeClock, task: int) -> None:
    assert queue.fail(task, WORKER, "the last attempt").status is TaskStatus.FAILED
    assert queue.retry_failed() == 1


@pytest.mark.parametrize(
    ("requeue", "max_attempts"),
    [
        (_fail_with_attempts_left, 2),
        (_lease_expires, 2),
        (_shutdown_release, 2),
        (_retry_by_hand, 1),
        (_retry_every_failed, 1),
    ],
    ids=["retry-after-failure", "lease-expired", "shutdown-release", "retry", "retry-failed"],
)
def test_every_way_back_into_the_queue_wakes_a_listener(
    queue: TaskQueue,
    watch: NotifyWatch,
    clock: FakeClock,
    requeue: Callable[[TaskQueue, FakeClock, int], None],
    max_attempts: int,
) -> None:
    [task] = enqueued(queue, watch, max_attempts)
    assert [t.id for t in queue.claim(WORKER, lease_seconds=60)] == [task]
    requeue(queue, clock, task)
    assert notified_within(watch, WAIT_S)
    assert queue.get(task).status is TaskStatus.QUEUED


def test_the_hot_paths_never_call_the_trigger_function(
    queue: TaskQueue, pg: PostgresDatabase, watch: NotifyWatch
) -> None:
    """Counted by the server (track_functions): none of these statements calls the function,
    where a trigger that tested the statuses inside it would be called for every claimed and
    every completed row."""
    if pg.execute("SELECT current_setting('is_superuser')").fetchall()[0][0] != "on":
        pytest.skip("counting function calls needs SET track_functions, a superuser setting")
    pg.execute("SET track_functions = 'pl'")
    enqueued(queue, watch, *[3] * 20)

    def calls() -> int:
        """The trigger function's calls counted by this session and not yet reported (the
        count of the transaction so far, plus earlier ones the server has yet to collect)."""
        rows = pg.execute(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_xact_user_functions"
            " WHERE funcname = 'notify_queued_task'"
        ).fetchall()
        return int(rows[0][0])

    with queue.atomic():  # one transaction: the session reports no counts in the middle of it
        before = calls()
        tasks = queue.claim(WORKER, limit=20)
        queue.extend_leases([t.id for t in tasks], WORKER, 60)
        assert queue.complete_many([t.id for t in tasks[:10]], WORKER) == []
        for task in tasks[10:19]:
            queue.complete(task.id, WORKER)
        assert calls() == before
        queue.fail(tasks[19].id, WORKER, "again")  # the control: one row back in the queue
        assert calls() == before + 1
