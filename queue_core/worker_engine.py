"""WorkerEngine: run handlers for queued tasks in spawn child processes, until told to stop.

The seed's "Worker Engine". One engine is one process that owns one database connection and is
the only writer among its processes; ``concurrency`` executor children (see
:mod:`queue_core.executor`) run the handlers. The engine's loop:

1. collects the outcomes the executors send back and hands each free executor its next task
   from the prefetch buffer at once, so executors never wait for the database;
2. writes, in ONE ``BEGIN IMMEDIATE`` transaction, the outcomes of every task that finished
   since the last write (completions in one statement), the lease renewal when it is due (all
   leases in one statement, plus the engine's ``workers`` heartbeat) and the next claim, sized
   to refill executors and prefetch buffer; a claim with nothing else to write runs alone, and
   looks before it locks, so a commit by another connection costs an idle engine no lock;
3. when the claim comes up short, stops claiming and waits on the database's change watch
   (:mod:`queue_core.waking`) beside its executors' pipes, and claims again only once another
   connection may have queued work, or when the next scheduled task or expiring lease is due.
   On SQLite the engine sleeps until the operating system reports a write to the ``-wal`` file
   (inotify, kqueue; Windows polls a cheap ``-shm`` read every few milliseconds) and confirms
   with ``PRAGMA data_version`` (no lock); on PostgreSQL it sleeps on a LISTEN connection's
   socket until a queued task's NOTIFY arrives. Each also looks on a timer as the safety net
   (SQLite every 5 s, PostgreSQL every second).

Prefetch is bounded twice. At most ``prefetch`` claimed tasks wait beyond the running ones
(default 4 per executor), and no more than the executors would start within 100 ms at the
recent handler duration: a task sitting in one engine's buffer cannot be run by an idle engine
elsewhere, so an engine running second-long handlers holds none beyond one per executor, while
one running millisecond handlers keeps enough queued that each executor starts its next task the
moment it finishes one. That, and writing outcomes and claims in batches, is where the speed is.

Stopping (:meth:`WorkerEngine.stop`, SIGINT/SIGTERM, Ctrl+C/Ctrl+Break) stops the claiming and
gives running handlers ``shutdown_grace`` seconds; prefetched tasks no handler started go back to
``queued`` without counting the attempt; a handler still running after the grace is terminated
and its task requeued with the attempt counted. A second stop request ends at once, releasing
what it can. Afterwards every task the engine claimed is completed, failed with a reason, or
queued.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing import connection as mp_connection
from typing import TYPE_CHECKING, Any, Final

from queue_core.backend import QueueBackend
from queue_core.claiming import ClaimStrategy
from queue_core.exceptions import (
    LeaseLostError,
    QueueBusyError,
    QueueDatabaseError,
    QueueIntegrityError,
    TaskNotFoundError,
)
from queue_core.executor import Handler, executor_main, handler_reference
from queue_core.stop_signals import StopSignals
from queue_core.task_queue import DEFAULT_LEASE_SECONDS, TaskQueue
from queue_core.validation import (
    check_count,
    check_optional_text,
    check_text,
    non_negative_seconds,
    positive_seconds,
    type_names,
)
from queue_core.waking import ChangeWatch

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from queue_core.models import Task

__all__ = ["WorkerEngine", "WorkerEngineError"]

LOG: Final = logging.getLogger("queue_core.worker_engine")
ACTIVE_SECONDS: Final = 2.0
"""An engine that found work this recently counts as busy: a polled change watch (SQLite's)
looks more often (see :meth:`~queue_core.waking.ChangeWatch.poll_seconds`)."""
DEFAULT_PREFETCH_PER_EXECUTOR: Final = 4
"""``prefetch`` defaults to this many tasks per executor (bounded further by the horizon)."""
PREFETCH_HORIZON_SECONDS: Final = 0.1
"""Prefetch no more tasks than the executors would start within this time, at the recent
handler duration: plenty of short tasks, none beyond one per executor for long ones."""
OUTCOME_DELAY_SECONDS: Final = 0.005
"""The longest a finished task's outcome waits for others to share its write transaction."""
WRITE_RETRY_FIRST_SECONDS: Final = 0.0002
WRITE_RETRY_MAX_SECONDS: Final = 0.002
"""A write that finds another connection holding the write lock is tried again after 0.2 ms,
doubling up to 2 ms, while the loop goes on feeding executors. SQLite's busy handler would
instead block the loop for 1, 2, 5, 10 ms ... per try: measured at 3,000 enqueues/s, that was
where the engine's pickup-latency tail came from (waits of 3, 8 and 18 ms while the producer
held the lock for well under a millisecond at a time)."""
BUSY_RETRY_SECONDS: Final = 0.05
"""The retry interval once the write lock stayed taken for a whole busy timeout."""
FINAL_WRITE_ATTEMPTS: Final = 3
EXECUTOR_JOIN_SECONDS: Final = 10.0


_REFUSED_OUTCOME: Final = (
    ValueError,  # UnicodeEncodeError included
    TypeError,
    QueueIntegrityError,
    TaskNotFoundError,
)
"""What writing one task's outcome may raise because of that outcome alone; anything else (a
corrupt or vanished database) ends the engine, after it released what it could."""


def _printable(text: str) -> str:
    """``text`` with what SQLite cannot store as UTF-8 (lone surrogates) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class WorkerEngineError(QueueDatabaseError):
    """The engine cannot run: its handlers do not import in an executor process."""


@dataclass
class _Outcome:
    """A finished task waiting to be written: completed, or failed with ``error``."""

    task_id: int
    error: str | None = None  # None means completed
    retry_in: float | None = None  # None: the queue's backoff
    log_message: str | None = None  # a task_logs row to add (the full traceback)


class _Readiness:
    """Wait until any of a changing set of pipes and process sentinels is ready.

    ``multiprocessing.connection.wait`` builds and tears down a selector on every call, which
    is most of what an idle engine's 200 looks a second cost. On POSIX one selector is kept
    and updated as executors come and go; Windows waits on handles, so it keeps using
    ``wait``.
    """

    def __init__(self) -> None:
        self._objects: list[Any] = []
        self._selector = selectors.DefaultSelector() if os.name == "posix" else None

    def add(self, obj: Any) -> None:
        self._objects.append(obj)
        if self._selector is not None:
            self._selector.register(obj, selectors.EVENT_READ)

    def remove(self, obj: Any) -> None:
        self._objects.remove(obj)
        if self._selector is not None:
            self._selector.unregister(obj)

    def wait(self, timeout: float | None) -> list[Any]:
        if self._selector is None:
            return list(mp_connection.wait(self._objects, timeout))
        return [key.fileobj for key, _ in self._selector.select(timeout)]

    def readable(self, conn: Connection) -> bool:
        """Whether ``conn`` has data now; on POSIX without building a selector as poll() does."""
        if self._selector is None:
            return conn.poll()
        return bool(select.select([conn], [], [], 0)[0])

    def close(self) -> None:
        if self._selector is not None:
            self._selector.close()


class _Executor:
    """One child process and the tasks sent to it, in the order it runs them.

    The first task is the one running (or about to run); ``head_since`` is when it became
    first, which is when its timeout starts.
    """

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.tasks: deque[Task] = deque()
        self.head_since = 0.0
        # The entries (by identity: the engine may hold a newer claim of the same task id) whose
        # lease was lost: their outcome is discarded.
        self._lost: set[int] = set()
        self.stopping = False  # told to stop: it answers with its unstarted tasks and exits

    def mark_lost(self, task: Task) -> None:
        self._lost.add(id(task))

    def is_lost(self, task: Task) -> bool:
        return id(task) in self._lost

    def send(self, tasks: list[Task]) -> None:
        self.conn.send(tasks)
        if not self.tasks:
            self.head_since = time.monotonic()
        self.tasks.extend(tasks)

    def pop_head(self, task_id: int) -> tuple[Task, bool] | None:
        """Take the first task, which ``task_id``'s outcome is about; with whether it was lost."""
        if not self.tasks or self.tasks[0].id != task_id:
            return None
        self.head_since = time.monotonic()
        task = self.tasks.popleft()
        lost = id(task) in self._lost
        self._lost.discard(id(task))
        return task, lost

    def take_all(self) -> tuple[Task | None, list[Task]]:
        """Empty the executor: its head task if its lease holds, and the others whose do."""
        kept = [task for task in self.tasks if id(task) not in self._lost]
        head = self.tasks[0] if self.tasks and id(self.tasks[0]) not in self._lost else None
        self.tasks.clear()
        self._lost.clear()
        return head, kept[1:] if head is not None else kept

    def deadline(self, timeouts: Mapping[str, float]) -> float | None:
        if not self.tasks:
            return None
        limit = timeouts.get(self.tasks[0].type)
        return None if limit is None else self.head_since + limit


class WorkerEngine:
    """Claim tasks and run their handlers in ``concurrency`` spawn child processes.

    Example (handlers must be importable by reference: top-level functions of a module)::

        db = QueueDatabase("queue.db")
        engine = WorkerEngine(db, {"thumbnail": thumbnails.make}, concurrency=4)
        engine.run()  # until SIGINT/SIGTERM (Ctrl+C/Ctrl+Break), or engine.stop()

    A handler takes the :class:`~queue_core.models.Task`. Returning completes the task; raising
    fails it (the traceback's last lines in ``error_message``, the full traceback in a
    ``task_logs`` row, a retry after the queue's backoff while attempts remain); raising
    :class:`~queue_core.executor.Retry` reschedules it. A handler that kills its process fails
    its task with a message saying so, and the executor is replaced.

    :param db: the queue database (its schema initialised), or a :class:`TaskQueue` on it to use
        that queue's clock and retry settings.
    :param handlers: task type -> handler callable (or ``"module:name"`` reference).
    :param concurrency: how many executor processes run handlers at once.
    :param region: also claim tasks for this region (tasks without a region always match).
    :param types: the task types to claim; default every type in ``handlers``.
    :param strategy: the claim order (``"priority"``, ``"fifo"``, ``"lifo"`` or
        ``"weighted_random"``; default: the queue's ``claim_strategy``, ``priority`` unless the
        :class:`TaskQueue` passed in says otherwise).
    :param lease_seconds: the lease of each claimed task; the engine renews all of its leases
        every third of it, so only a stalled or dead engine lets one run out.
    :param prefetch: how many claimed tasks may wait for an executor beyond the running ones
        (default 4 per executor, and never more than the executors start in 100 ms at the
        recent handler duration; 0 claims only for free executors).
    :param worker_id: the ``workers`` row and ``locked_by`` value (default: host and pid).
    :param shutdown_grace: seconds running handlers get to finish once a stop is requested.
    :param timeouts: task type -> seconds after which a running handler is terminated and its
        task failed (default: no limit).
    :param handle_signals: make :meth:`run` install the stop signal handlers (only possible in
        the main thread; elsewhere call :meth:`stop`).
    :param signals: builds the :class:`StopSignals` that routes stop requests to the engine's
        callback (tests pass one with a fake signal API or another OS's signals).
    :raises TypeError, ValueError: a bad argument, or a handler that a child cannot import.
    """

    def __init__(
        self,
        db: QueueBackend | TaskQueue,
        handlers: Mapping[str, Handler | str],
        *,
        concurrency: int = 4,
        region: str | None = None,
        types: Iterable[str] | None = None,
        strategy: ClaimStrategy | str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        prefetch: int | None = None,
        worker_id: str | None = None,
        shutdown_grace: float = 10.0,
        timeouts: Mapping[str, float] | None = None,
        handle_signals: bool = True,
        signals: Callable[[Callable[[str], None]], StopSignals] | None = None,
    ) -> None:
        if isinstance(db, TaskQueue):
            self._queue = db
        elif isinstance(db, QueueBackend):
            self._queue = TaskQueue(db)
        else:
            raise TypeError(
                "db must be a QueueDatabase, PostgresDatabase or TaskQueue, "
                f"not {type(db).__name__}"
            )
        if not isinstance(handlers, Mapping) or not handlers:
            raise ValueError("handlers must be a non-empty mapping of task type to handler")
        self._references = {str(t): handler_reference(h) for t, h in handlers.items()}
        check_count(concurrency, "concurrency", 1)
        self.concurrency = concurrency
        if prefetch is None:
            prefetch = DEFAULT_PREFETCH_PER_EXECUTOR * concurrency
        check_count(prefetch, "prefetch", 0)
        self.prefetch = prefetch
        self.types = sorted(self._references if types is None else set(type_names(types)))
        unknown = sorted(set(self.types) - set(self._references))
        if unknown:
            raise ValueError(f"types {unknown} have no handler")
        check_optional_text(region, "region")
        self.region = region
        self.strategy = (
            self._queue.claim_strategy if strategy is None else ClaimStrategy.parse(strategy)
        )
        self.lease_seconds = positive_seconds(lease_seconds, "lease_seconds")
        self.shutdown_grace = non_negative_seconds(shutdown_grace, "shutdown_grace")
        self.timeouts = {
            str(t): positive_seconds(s, f"timeouts[{t!r}]") for t, s in (timeouts or {}).items()
        }
        if worker_id is None:
            worker_id = f"engine-{socket.gethostname()}-{os.getpid()}"
        check_text(worker_id, "worker_id")
        self.worker_id = worker_id
        self._handle_signals = handle_signals
        self._signals = signals
        self._context = multiprocessing.get_context("spawn")
        self._wake_reader, self._wake_writer = self._context.Pipe(duplex=False)
        self._readiness = _Readiness()
        self._readiness.add(self._wake_reader)
        self._stop_requests = 0
        self._ran = False
        # Loop state, reset by run().
        self._executors: list[_Executor] = []
        self._buffer: deque[Task] = deque()
        self._outcomes: list[_Outcome] = []
        self._outcomes_since = 0.0  # monotonic time the oldest unwritten outcome arrived
        self._handler_seconds: float | None = None  # moving average of handler durations
        self._release: list[int] = []
        self._maybe_work = True
        self._last_work = 0.0
        self._watch: ChangeWatch | None = None  # opened by run(), closed when it returns
        self._watch_handle: int | None = None  # the watch's handle registered in _readiness
        self._next_due: datetime | None = None
        self._renew_at: datetime | None = None
        self._grace_deadline: float | None = None
        self._write_retry_at = 0.0  # monotonic; 0: no write is waiting for the write lock
        self._write_retry_delay = 0.0
        self._busy_since = 0.0  # monotonic time the write lock was first found taken
        self._busy_warned_at = 0.0
        self._fatal: str | None = None
        self._ready_executors = 0
        self.ready = threading.Event()
        """Set once every executor has imported its handlers (run() is fully up)."""
        self.completed = 0
        """Tasks this engine completed (read it from any thread)."""
        self.failed = 0
        """Tasks this engine failed for good (out of attempts)."""

    # -- public ------------------------------------------------------------------------------

    @property
    def queue(self) -> TaskQueue:
        """The queue the engine claims from."""
        return self._queue

    def busy_executor_pids(self) -> list[int]:
        """The process ids of the executors running a task now (for monitoring and tests)."""
        return [
            pid for e in list(self._executors) if e.tasks and (pid := e.process.pid) is not None
        ]

    def stop(self, *, now: bool = False) -> None:
        """Ask :meth:`run` to stop; safe from any thread and from a signal handler.

        The first call stops claiming and lets running handlers finish within
        ``shutdown_grace``; a second call (or ``now=True``) terminates them at once. Either way
        :meth:`run` releases or requeues every task it holds before it returns.
        """
        # No lock: a signal handler must never wait for one the interrupted thread may hold.
        requests = max(self._stop_requests + 1, 2 if now else 1)
        self._stop_requests = requests
        if requests <= 2:  # at most two bytes: the pipe can never fill and block a signal handler
            with suppress(OSError):  # run() already finished and closed the pipe
                self._wake_writer.send_bytes(b"s")

    def run(self) -> None:
        """Run until stopped; return after every held task was completed, failed or released.

        :raises WorkerEngineError: the handlers could not be imported in an executor, or this
            is a daemonic process (which may not start executors).
        :raises QueueDatabaseError: the database failed in a way waiting cannot fix (after the
            engine released what it could).
        :raises RuntimeError: run() was already called on this engine.
        """
        if self._ran:
            raise RuntimeError("a WorkerEngine runs once; create a new one")
        if multiprocessing.current_process().daemon:
            raise WorkerEngineError(
                "a WorkerEngine cannot run in a daemonic process: those may not start the "
                "executor processes (start it with daemon=False)"
            )
        self._ran = True
        signals = self._stop_signals()
        if signals is not None:
            signals.install()
        try:
            self._run()
        finally:
            if signals is not None:
                signals.restore()
            self._readiness.close()
            self._wake_reader.close()
            self._wake_writer.close()
        if self._fatal is not None:
            raise WorkerEngineError(self._fatal)

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        queue = self._queue
        queue.register_worker(
            self.worker_id,
            {
                "engine": True,
                "types": self.types,
                "region": self.region,
                "concurrency": self.concurrency,
                "pid": os.getpid(),
            },
        )
        self._renew_at = queue.now() + timedelta(seconds=self.lease_seconds / 3)
        LOG.info(
            "worker engine %s: %d executors, types %s, region %s, lease %gs",
            self.worker_id,
            self.concurrency,
            ",".join(self.types),
            self.region,
            self.lease_seconds,
        )
        self._watch = queue.db.change_watch()
        try:
            self._executors = [self._start_executor() for _ in range(self.concurrency)]
            while not self._finished():
                self._step()
        except BaseException:
            LOG.exception("worker engine %s failed; releasing its tasks", self.worker_id)
            self._stop_requests = 2
            self._terminate_running("the worker engine failed")
            self._release.extend(task.id for task in self._buffer)
            self._buffer.clear()
            self._final_write()
            raise
        finally:
            self._close_executors()
            self._close_watch()
        LOG.info(
            "worker engine %s stopped: %d completed, %d failed",
            self.worker_id,
            self.completed,
            self.failed,
        )

    def _finished(self) -> bool:
        if self._stop_requests == 0:
            return False
        if self._stop_requests >= 2:
            self._terminate_running("the worker engine was stopped at once")
        if self._executors:
            return False
        self._release.extend(task.id for task in self._buffer)
        self._buffer.clear()
        self._final_write()
        return True

    def _step(self) -> None:
        idle = self._idle()
        self._sync_watch_handle(idle or self._wants_changes())
        if idle:
            ready = self._idle_wait()
        else:
            ready = self._readiness.wait(self._wait_seconds())
            if self._watch_fired(ready) and self._changes.changed():
                self._maybe_work = True
        if self._wake_reader in ready:
            while self._wake_reader.poll():
                self._wake_reader.recv_bytes()
        self._collect(ready)
        if self._outcomes and not self._outcomes_since:
            self._outcomes_since = time.monotonic()
        if self._stop_requests:
            self._begin_shutdown()
        else:
            self._check_timeouts()
        self._dispatch()
        if not self._maybe_work and self._claim_limit():
            self._look_for_work()
        if self._should_write():
            self._write()
            self._dispatch()

    def _idle_wait(self) -> list[Any]:
        """Wait with nothing to do: each wake-up asks the change watch and nothing else.

        Returns what became ready, or nothing once there may be work (another connection
        committed, or the next scheduled task or expiring lease is due) or a renewal is due.
        """
        now_mono = time.monotonic()
        wall = self._queue.now()
        renew_at = now_mono + (
            3600.0 if self._renew_at is None else (self._renew_at - wall).total_seconds()
        )
        due_at = (
            None if self._next_due is None else now_mono + (self._next_due - wall).total_seconds()
        )
        watch = self._changes
        while True:
            recent = now_mono - self._last_work < ACTIVE_SECONDS
            interval = watch.poll_seconds(recent)
            if due_at is not None:
                interval = min(interval, due_at - now_mono)
            ready = self._readiness.wait(max(0.0, min(interval, renew_at - now_mono)))
            fired = self._watch_fired(ready)
            if ready:
                if fired and watch.changed():
                    self._maybe_work = True
                return ready
            now_mono = time.monotonic()
            if watch.changed() or (due_at is not None and now_mono >= due_at):
                self._maybe_work = True
                return []
            if now_mono >= renew_at:
                return []

    @property
    def _changes(self) -> ChangeWatch:
        if self._watch is None:
            raise RuntimeError("the change watch is opened by run()")
        return self._watch

    def _wants_changes(self) -> bool:
        """Whether a change would make the engine claim: it has room and no claim pending."""
        return not self._maybe_work and self._claim_limit() > 0

    def _sync_watch_handle(self, wanted: bool) -> None:
        """Wait on the watch's current handle (it changes when a lost listener reconnects),
        only while a change would make the engine claim.

        While it would not (a claim is due anyway, or executors and buffer are full), commits
        by producers, and the engine's own, would only wake the loop for nothing: measured at
        1,000 enqueues/s, that cost a quarter more CPU per task. What they signal waits in the
        handle and is read once the engine registers it again.
        """
        handle = self._changes.handle() if wanted else None
        if handle == self._watch_handle:
            return
        if self._watch_handle is not None:
            self._readiness.remove(self._watch_handle)
        if handle is not None:
            self._readiness.add(handle)
        self._watch_handle = handle

    def _watch_fired(self, ready: list[Any]) -> bool:
        """Take the watch's handle out of ``ready``; whether it was there."""
        if self._watch_handle is not None and self._watch_handle in ready:
            ready.remove(self._watch_handle)
            return True
        return False

    def _close_watch(self) -> None:
        if self._watch_handle is not None:
            self._readiness.remove(self._watch_handle)
            self._watch_handle = None
        if self._watch is not None:
            self._watch.close()

    def _idle(self) -> bool:
        return not (
            self._maybe_work
            or self._stop_requests
            or self._outcomes
            or self._release
            or self._buffer
            or any(executor.tasks for executor in self._executors)
        )

    def _wait_seconds(self) -> float | None:
        """How long the next wait may block: until the earliest thing the loop must do."""
        if self._should_write():
            return 0.0  # only collect what has already arrived, then write
        now_mono = time.monotonic()
        deadlines = [
            deadline
            for executor in self._executors
            if (deadline := executor.deadline(self.timeouts)) is not None
        ]
        if self._outcomes_since:
            deadlines.append(self._outcomes_since + OUTCOME_DELAY_SECONDS)
        if self._write_retry_at > now_mono:  # a write put off because the lock was taken
            deadlines.append(self._write_retry_at)
        if self._grace_deadline is not None:
            deadlines.append(self._grace_deadline)
        if self._renew_at is not None:
            wall_seconds = (self._renew_at - self._queue.now()).total_seconds()
            deadlines.append(now_mono + wall_seconds)
        if self._wants_changes():  # the change watch's next look
            recent = now_mono - self._last_work < ACTIVE_SECONDS
            deadlines.append(now_mono + self._changes.poll_seconds(recent))
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now_mono)

    def _collect(self, ready: list[Any]) -> None:
        for executor in list(self._executors):
            if executor.conn in ready:
                self._drain(executor)
            if executor.process.sentinel in ready:  # it exited: read its last words first
                self._drain(executor)
                self._on_exit(executor)
            else:  # a task that lost its lease while queued may have just started
                self._kill_if_head_lost(executor)

    def _drain(self, executor: _Executor) -> None:
        """Handle every message the executor has sent."""
        try:
            while self._readiness.readable(executor.conn):
                self._on_message(executor, executor.conn.recv())
        except (EOFError, OSError):
            pass  # it exited; the caller sees that through is_alive()

    def _on_message(self, executor: _Executor, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "outcomes":
            for outcome in message[1]:
                self._on_outcome(executor, outcome)
        elif kind == "ready":
            executor.head_since = time.monotonic()  # its first task starts now, not at spawn
            self._ready_executors += 1
            if self._ready_executors >= self.concurrency:
                self.ready.set()
        elif kind == "unstarted":
            unstarted = set(message[1])
            kept: deque[Task] = deque()
            for task in executor.tasks:
                if task.id not in unstarted:
                    kept.append(task)
                elif not executor.is_lost(task):  # a lost one is no longer ours to release
                    self._release.append(task.id)
            executor.tasks = kept
        elif kind == "fatal":
            self._fatal = f"an executor could not load the handlers: {message[1]}"
            LOG.error("worker engine %s: %s", self.worker_id, self._fatal)
            self._release.extend(task.id for task in executor.tasks)  # none of them started
            executor.tasks.clear()
            self.stop(now=True)

    def _on_outcome(self, executor: _Executor, outcome: tuple[Any, ...]) -> None:
        kind, task_id = outcome[0], outcome[1]
        took = time.monotonic() - executor.head_since
        popped = executor.pop_head(task_id)
        if popped is None:
            LOG.error(
                "executor %s sent an outcome for task %d out of turn", executor.process.pid, task_id
            )
            return
        previous = self._handler_seconds
        self._handler_seconds = took if previous is None else 0.8 * previous + 0.2 * took
        if popped[1]:  # its lease was lost
            LOG.warning(
                "task %d ended (%s) after its lease was lost; result discarded", task_id, kind
            )
        elif kind == "done":
            self._outcomes.append(_Outcome(task_id))
        elif kind == "retry":
            error = f"retry requested by the handler: {outcome[3]}"
            self._outcomes.append(_Outcome(task_id, error, retry_in=outcome[2]))
        else:
            log = f"handler raised:\n{outcome[3]}"
            self._outcomes.append(_Outcome(task_id, outcome[2], log_message=log))

    def _on_exit(self, executor: _Executor) -> None:
        """An executor ended: by itself after being told to stop, or it died."""
        executor.process.join(EXECUTOR_JOIN_SECONDS)  # its sentinel fired: reaps it at once
        code = executor.process.exitcode
        if executor.tasks and not executor.stopping:
            how = (
                f"killed by signal {-code}"
                if code is not None and code < 0
                else f"exit code {code}"
            )
            LOG.error("executor %s died (%s)", executor.process.pid, how)
            self._fail_head(executor, f"the executor process running the handler died ({how})")
        elif executor.tasks:  # it was stopping but died before answering
            self._fail_head(executor, "the executor process died while the worker engine stopped")
        self._forget(executor)

    def _fail_head(
        self, executor: _Executor, reason: str, *, retry_in: float | None = None
    ) -> None:
        """Fail the task an executor was running; give back the ones queued behind it."""
        task, rest = executor.take_all()
        if task is not None:
            LOG.warning("task %d: %s", task.id, reason)
            self._outcomes.append(_Outcome(task.id, reason, retry_in))
        if self._stop_requests:
            self._release.extend(t.id for t in rest)
        else:  # still leased to this engine: another executor runs them
            self._buffer.extendleft(reversed(rest))

    def _forget(self, executor: _Executor) -> None:
        self._executors.remove(executor)
        self._readiness.remove(executor.conn)
        self._readiness.remove(executor.process.sentinel)
        executor.conn.close()
        if self._stop_requests == 0 and self._fatal is None:
            self._executors.append(self._start_executor())

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for executor in list(self._executors):
            deadline = executor.deadline(self.timeouts)
            if deadline is not None and now >= deadline:
                limit = self.timeouts[executor.tasks[0].type]
                self._kill(executor, f"the handler ran past its {limit:g} s timeout")

    def _begin_shutdown(self) -> None:
        if self._grace_deadline is None:
            self._grace_deadline = time.monotonic() + self.shutdown_grace
            LOG.info(
                "worker engine %s stopping: %d handlers running, %d prefetched tasks released, "
                "grace %gs",
                self.worker_id,
                sum(bool(e.tasks) for e in self._executors),
                len(self._buffer) + sum(max(0, len(e.tasks) - 1) for e in self._executors),
                self.shutdown_grace,
            )
            self._release.extend(task.id for task in self._buffer)
            self._buffer.clear()
            for executor in self._executors:
                executor.stopping = True
                with suppress(OSError):  # dead already: the sentinel reports it
                    executor.conn.send(None)
        if time.monotonic() >= self._grace_deadline:
            self._terminate_running(
                f"the handler was still running {self.shutdown_grace:g} s after the worker "
                "engine began to stop"
            )

    def _terminate_running(self, reason: str) -> None:
        for executor in list(self._executors):
            self._kill(executor, f"{reason}; executor terminated, task requeued", retry_in=0.0)

    def _kill(self, executor: _Executor, reason: str, *, retry_in: float | None = None) -> None:
        executor.process.kill()
        executor.process.join(EXECUTOR_JOIN_SECONDS)
        self._drain(executor)  # outcomes sent just before the kill still count
        if executor.tasks:
            self._fail_head(executor, reason, retry_in=retry_in)
        self._forget(executor)

    def _dispatch(self) -> None:
        """Hand buffered tasks out, each to the executor with the fewest tasks queued.

        Each executor may be sent its next tasks ahead, up to the prefetch depth, so it never
        waits for the engine between two tasks; spreading them keeps every executor busy
        before any gets a second one.
        """
        if self._stop_requests or not self._buffer or not self._executors:
            return
        depth = 1 + -(-self._prefetch_now() // self.concurrency)
        batches: list[list[Task]] = [[] for _ in self._executors]
        loads = [len(executor.tasks) for executor in self._executors]
        while self._buffer:
            least = min(range(len(loads)), key=loads.__getitem__)
            if loads[least] >= depth:
                break
            batches[least].append(self._buffer.popleft())
            loads[least] += 1
        for executor, batch in zip(self._executors, batches, strict=True):
            if batch:
                try:
                    executor.send(batch)
                except OSError:  # it died; the sentinel reports it on the next wait
                    self._buffer.extendleft(reversed(batch))

    def _claim_limit(self) -> int:
        if self._stop_requests or self._fatal is not None:
            return 0
        held = len(self._buffer) + sum(len(e.tasks) for e in self._executors)
        return max(0, self.concurrency + self._prefetch_now() - held)

    def _prefetch_now(self) -> int:
        """The prefetch bound: ``prefetch``, but no more tasks than the executors would start
        within :data:`PREFETCH_HORIZON_SECONDS` at the handlers' recent duration."""
        if self._handler_seconds is None:
            return min(self.prefetch, self.concurrency)  # no duration known yet: one each
        horizon = int(self.concurrency * PREFETCH_HORIZON_SECONDS / self._handler_seconds)
        return min(self.prefetch, horizon)

    def _look_for_work(self) -> None:
        due = self._next_due is not None and self._queue.now() >= self._next_due
        if due or self._changes.changed():
            self._maybe_work = True

    def _should_write(self) -> bool:
        """Whether to write now, or let more outcomes and claim room gather into one batch.

        Now: when releases are pending, a renewal is due, the engine is stopping, there may be
        work and an executor is idle with nothing buffered or the claim room reached half the
        capacity, or outcomes waited :data:`OUTCOME_DELAY_SECONDS` or filled half a batch. An
        idle executor alone does not make outcomes urgent: without a claim to go with them,
        they wait to share one transaction (fewer, so the producers wait less for the lock).
        """
        if self._write_retry_at and time.monotonic() < self._write_retry_at:
            return False  # the write lock was taken a moment ago: try again soon, not now
        if self._release or (self._stop_requests and self._outcomes):
            return True
        if self._renew_at is not None and self._queue.now() >= self._renew_at:
            return True
        limit = self._claim_limit()
        starving = not self._buffer and any(not e.tasks for e in self._executors)
        refill_at = max(1, (self.concurrency + self._prefetch_now()) // 2)
        if self._maybe_work and limit and (limit >= refill_at or starving):
            return True
        if not self._outcomes:
            return False
        return (
            len(self._outcomes) >= refill_at
            or time.monotonic() - self._outcomes_since >= OUTCOME_DELAY_SECONDS
        )

    def _write(self, *, wait: bool = False) -> None:
        """One transaction: outcomes, releases, lease renewal and heartbeat, then a claim.

        A claim alone goes without it: :meth:`TaskQueue.claim` looks before it locks. Unless
        ``wait`` (the final writes of a stop), a write lock held by another connection is not
        waited for: the write is tried again shortly (see :data:`WRITE_RETRY_FIRST_SECONDS`)
        and the loop goes on meanwhile.
        """
        queue = self._queue
        renew = self._renew_at is not None and queue.now() >= self._renew_at
        limit = self._claim_limit() if self._maybe_work else 0
        outcomes, releases = self._outcomes, self._release
        lost: list[int] = []
        released_lost: list[int] = []
        lost_leases: list[int] = []
        claimed: list[Task] = []
        try:
            with nullcontext() if wait else queue.db.without_busy_wait():
                if outcomes or releases or renew:
                    with queue.atomic():
                        lost = self._write_outcomes(outcomes)
                        released_lost = queue.release_unstarted(releases, self.worker_id)
                        if renew:
                            lost_leases = queue.extend_leases(
                                self._held_ids(), self.worker_id, self.lease_seconds
                            )
                            queue.worker_heartbeat(self.worker_id)
                        if limit:
                            claimed = self._claim(limit)
                elif limit:
                    # Only a claim: outside atomic(), so it looks before it locks and an engine
                    # woken by another connection's commit takes no write lock when nothing is
                    # due.
                    claimed = self._claim(limit)
        except QueueBusyError as exc:
            self._on_busy(exc)
            return
        self._write_retry_at = self._busy_since = 0.0
        self._outcomes, self._release = [], []
        self._outcomes_since = 0.0
        for task_id in lost + released_lost:
            LOG.warning("task %d: lease lost before its outcome was written; discarded", task_id)
        if renew:
            self._renew_at = queue.now() + timedelta(seconds=self.lease_seconds / 3)
            self._on_lost_leases(set(lost_leases))
        if limit:
            if claimed:
                self._last_work = time.monotonic()
                self._drop_older_copies({task.id for task in claimed})
            self._maybe_work = len(claimed) == limit
            self._buffer.extend(claimed)

    def _on_busy(self, exc: QueueBusyError) -> None:
        """Another connection holds the write lock: schedule the next try (nothing was written).

        Tries come 0.2 ms apart at first, doubling to 2 ms; once the lock stayed taken for a
        whole busy timeout (a long transaction elsewhere), every :data:`BUSY_RETRY_SECONDS`,
        with a warning each time the busy timeout passes again.
        """
        now = time.monotonic()
        timeout = self._queue.db.busy_timeout_ms / 1000
        if not self._busy_since:
            self._busy_since = self._busy_warned_at = now
            self._write_retry_delay = WRITE_RETRY_FIRST_SECONDS
        elif now - self._busy_since >= timeout:
            self._write_retry_delay = BUSY_RETRY_SECONDS
        else:
            self._write_retry_delay = min(2 * self._write_retry_delay, WRITE_RETRY_MAX_SECONDS)
        if now - self._busy_warned_at >= timeout:
            self._busy_warned_at = now
            LOG.warning(
                "worker engine %s: the write lock stayed taken for %.1f s (%s); retrying",
                self.worker_id,
                now - self._busy_since,
                exc,
            )
        self._write_retry_at = now + self._write_retry_delay

    def _claim(self, limit: int) -> list[Task]:
        queue = self._queue
        # Before the claim: whatever is committed after this point wakes the engine, and the
        # claim sees everything committed before it.
        self._changes.mark()
        claimed = queue.claim(
            self.worker_id,
            types=self.types,
            region=self.region,
            lease_seconds=self.lease_seconds,
            limit=limit,
            strategy=self.strategy,
        )
        if len(claimed) < limit:
            self._next_due = queue.next_due(types=self.types, region=self.region)
        return claimed

    def _write_outcomes(self, outcomes: list[_Outcome]) -> list[int]:
        """Write the outcomes; return the ids whose lease was lost (their result discarded).

        The completions are one fenced statement over task ids, which only a failing database
        can break. Each failure carries what its handler produced (a message, a retry delay)
        and goes in its own SAVEPOINT (see :meth:`_write_failure`), so one the queue refuses
        cannot abort the batch.
        """
        queue = self._queue
        lost = queue.complete_many([o.task_id for o in outcomes if o.error is None], self.worker_id)
        self.completed += sum(o.error is None for o in outcomes) - len(lost)
        for outcome in outcomes:
            if outcome.error is not None and self._write_failure(outcome):
                lost.append(outcome.task_id)
        return lost

    def _write_failure(self, outcome: _Outcome) -> bool:
        """Fail one task in a SAVEPOINT of the batch; True if its lease was lost.

        An outcome the queue refuses (text SQLite cannot encode, a retry delay it does not
        accept, the task gone) is logged and written again as a plain failure, its text
        escaped, with the queue's backoff; if even that is refused, the task is left to its
        lease, which runs out since the engine no longer renews it.
        """
        assert outcome.error is not None
        queue = self._queue
        tries = [(outcome.error, outcome.retry_in, outcome.log_message)]
        for error, retry_in, log_message in tries:
            try:
                with queue.atomic():  # nested: a SAVEPOINT, undone alone if this outcome fails
                    task = queue.fail(outcome.task_id, self.worker_id, error, retry_in=retry_in)
                    if log_message is not None:
                        queue.log(outcome.task_id, "ERROR", log_message)
            except LeaseLostError:
                return True
            except _REFUSED_OUTCOME as exc:
                LOG.error(
                    "task %d: its outcome could not be written (%s: %s)",
                    outcome.task_id,
                    type(exc).__name__,
                    exc,
                )
                if len(tries) == 1:
                    note = f"(the outcome could not be written as reported: {exc})"
                    tries.append(
                        (
                            _printable(f"{outcome.error}\n{note}"),
                            None,
                            None if log_message is None else _printable(log_message),
                        )
                    )
                continue
            self.failed += task.status.is_final
            return False
        LOG.error("task %d: left to its lease, which runs out unrenewed", outcome.task_id)
        return False

    def _held_ids(self) -> list[int]:
        ids = [task.id for task in self._buffer]
        for executor in self._executors:
            ids.extend(task.id for task in executor.tasks if not executor.is_lost(task))
        return ids

    def _on_lost_leases(self, lost: set[int]) -> None:
        if not lost:
            return
        for executor in list(self._executors):
            for task in executor.tasks:
                if task.id in lost and not executor.is_lost(task):
                    executor.mark_lost(task)
                    LOG.warning("task %d: lease lost; its result will be discarded", task.id)
            self._kill_if_head_lost(executor)
        kept = [task for task in self._buffer if task.id not in lost]
        if len(kept) != len(self._buffer):
            dropped = len(self._buffer) - len(kept)
            LOG.warning("dropped %d prefetched tasks whose lease was lost", dropped)
            self._buffer = deque(kept)

    def _drop_older_copies(self, claimed: set[int]) -> None:
        """Treat as lost every copy the engine still holds of a task it just claimed again.

        The database fences by ``locked_by``, which is the same for every claim of this engine;
        the engine claims again a task it holds only when that claim's lease ran out and the
        task went back to the queue (released by a claim, or cancelled and retried). The older
        copy then has no lease: if it runs, its executor is terminated now, before the new copy
        is handed out; queued in an executor, it is terminated when it starts; buffered, it is
        dropped. Its outcome is discarded either way, so only the new claim's counts (outcomes
        are written before the claim in the same transaction, so none of the older copy's can
        be waiting). Without this, both copies would run and either one's completion count.
        """
        older = [task for task in self._buffer if task.id in claimed]
        if older:
            self._buffer = deque(task for task in self._buffer if task.id not in claimed)
        for executor in list(self._executors):
            for task in executor.tasks:
                if task.id in claimed and not executor.is_lost(task):
                    executor.mark_lost(task)
                    older.append(task)
            self._kill_if_head_lost(executor)
        for task in older:
            LOG.warning(
                "task %d: claimed again after its earlier lease ran out; the earlier copy's "
                "result will be discarded",
                task.id,
            )

    def _kill_if_head_lost(self, executor: _Executor) -> None:
        """Terminate an executor running a task whose lease was lost (expired or cancelled).

        Another worker may hold the task now: its handler must not run on beside that one.
        The tasks queued behind it that still hold their lease go to other executors; those
        that lost it are dropped.
        """
        if executor.tasks and executor.is_lost(executor.tasks[0]):
            task_id = executor.tasks[0].id
            LOG.warning("task %d: lease lost while its handler ran; executor terminated", task_id)
            self._kill(executor, f"task {task_id} lost its lease while its handler ran")

    def _final_write(self) -> None:
        for attempt in range(1, FINAL_WRITE_ATTEMPTS + 1):
            if not (self._outcomes or self._release):
                break
            self._maybe_work = False
            try:
                self._write(wait=True)
            except QueueDatabaseError:
                LOG.exception(
                    "worker engine %s: final write failed (attempt %d)", self.worker_id, attempt
                )
        if self._outcomes or self._release:
            LOG.error(
                "worker engine %s could not write %d outcomes and %d releases; those tasks "
                "return to the queue when their leases expire",
                self.worker_id,
                len(self._outcomes),
                len(self._release),
            )

    # -- executors ---------------------------------------------------------------------------

    def _start_executor(self) -> _Executor:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=executor_main,
            args=(child_end, self._references),
            name=f"{self.worker_id}-executor",
            # Not a daemon: daemonic processes may not have children, so a daemon executor
            # would forbid running an engine inside one. An executor whose engine died exits
            # by itself: its pipe closes.
            daemon=False,
        )
        process.start()
        child_end.close()
        self._readiness.add(parent_end)
        self._readiness.add(process.sentinel)
        return _Executor(process, parent_end)

    def _close_executors(self) -> None:
        for executor in self._executors:
            with suppress(OSError):  # it died already
                executor.conn.send(None)
        deadline = time.monotonic() + EXECUTOR_JOIN_SECONDS
        for executor in self._executors:
            executor.process.join(max(0.0, deadline - time.monotonic()))
            if executor.process.is_alive():
                executor.process.kill()
                executor.process.join(EXECUTOR_JOIN_SECONDS)
            executor.conn.close()
        self._executors = []

    def _stop_signals(self) -> StopSignals | None:
        if not self._handle_signals:
            return None
        if self._signals is not None:
            return self._signals(self._on_signal)
        if threading.current_thread() is not threading.main_thread():
            return None
        return StopSignals(self._on_signal)

    def _on_signal(self, name: str) -> None:
        LOG.warning(
            "worker engine %s: %s received, %s",
            self.worker_id,
            name,
            "stopping now" if self._stop_requests else "stopping after running tasks",
        )
        self.stop()
