"""The executor: the spawn child process in which a worker engine runs handlers.

A handler is any importable callable that takes a :class:`~queue_core.models.Task`. The engine
never pickles the function itself: it passes ``module:qualname`` references, and the child,
started with the ``spawn`` method (the only one Windows has), imports them. The child then loops:
receive tasks over its pipe (a reader thread drains it at once, so the engine never waits to send),
run their handlers in order, send back the outcomes.

The engine sends lists of tasks, which the child runs in order, or ``None`` to stop. The child
sends back (tuples, so they pickle small and fast):

- ``("outcomes", [outcome, ...])``, each outcome one of ``("done", task_id)`` (the handler
  returned), ``("retry", task_id, after_seconds, reason)`` (it raised :class:`Retry`) or
  ``("error", task_id, summary, traceback_text)`` (it raised anything else);
- ``("ready",)``: the handlers were imported; sent once, first;
- ``("unstarted", [task_id, ...])``: its answer to ``None``, the tasks it never started;
- ``("fatal", message)``: the handlers could not be imported; the child exits.
"""

from __future__ import annotations

import importlib
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final

from queue_core.validation import non_negative_seconds

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from queue_core.models import Task

Handler = Callable[["Task"], object]
"""What a handler is: called with the task, its return value ignored."""

ERROR_SUMMARY_LINES: Final = 6
"""How many closing lines of a handler's traceback go into the task's ``error_message``."""
ERROR_SUMMARY_CHARS: Final = 2000


class Retry(Exception):
    """Raise from a handler to run its task again ``after`` seconds from now.

    The attempt counts like a failure: the task goes back to ``queued`` with ``run_after_utc``
    set ``after`` seconds ahead (instead of the queue's backoff) and ``error_message`` saying a
    retry was asked for. On the task's last attempt it fails for good instead.

    Example::

        def fetch(task: Task) -> None:
            if not remote_is_up():
                raise Retry(after=60, reason="remote is down")

    :raises TypeError, ValueError: ``after`` is not a finite, non-negative number of seconds.
    """

    def __init__(self, after: float = 0.0, reason: str | None = None) -> None:
        self.after = non_negative_seconds(after, "Retry(after=...)")
        self.reason = reason
        super().__init__(reason or f"retry requested in {self.after:g} s")


def handler_reference(handler: Handler | str) -> str:
    """The ``module:qualname`` by which a spawn child imports ``handler``.

    A string is taken as a reference already and checked by importing it.

    :raises TypeError: ``handler`` is neither callable nor a string.
    :raises ValueError: it cannot be imported by reference (a lambda, a nested function, a
        bound method, or a reference that does not resolve to a callable).
    """
    if isinstance(handler, str):
        reference = handler
    elif callable(handler):
        module = getattr(handler, "__module__", None)
        qualname = getattr(handler, "__qualname__", None)
        if not module or not qualname or "<" in qualname:
            raise ValueError(
                f"handler {handler!r} cannot be imported by a child process; use a function "
                "defined at the top level of a module"
            )
        if module == "__main__":
            raise ValueError(
                f"handler {qualname} is defined in __main__; a spawn child imports its "
                "handlers, so define them in an importable module"
            )
        reference = f"{module}:{qualname}"
    else:
        raise TypeError(
            f"a handler must be callable or 'module:name', not {type(handler).__name__}"
        )
    resolved = resolve_handler(reference)
    if not isinstance(handler, str) and resolved is not handler:
        raise ValueError(f"{reference} does not import back to {handler!r}")
    return reference


def import_reference(reference: str) -> Any:
    """Import ``package.module:name`` (``name`` may be dotted) and return the object.

    :raises ValueError: the reference is malformed, or the module or attribute is missing (the
        import error is chained).
    """
    module_name, sep, qualname = reference.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"{reference!r} is not 'package.module:name'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {reference!r}: {exc}") from exc
    return target


def resolve_handler(reference: str) -> Handler:
    """Import ``module:qualname`` and return the callable.

    :raises ValueError: as for :func:`import_reference`, or the object is not callable.
    """
    target = import_reference(reference)
    if not callable(target):
        raise ValueError(f"handler {reference!r} is a {type(target).__name__}, not callable")
    return target  # type: ignore[no-any-return]


def error_summary(traceback_text: str) -> str:
    """The closing lines of a traceback: where it was raised and the exception itself."""
    lines = [line for line in traceback_text.rstrip().splitlines() if line.strip()]
    summary = "\n".join(lines[-ERROR_SUMMARY_LINES:])
    return summary[-ERROR_SUMMARY_CHARS:]


def ignore_stop_signals() -> None:
    """Leave Ctrl+C, Ctrl+Break and SIGTERM to the engine.

    A console delivers Ctrl+C to every process attached to it, children included; the engine
    decides when an executor stops (after the grace period), so the executor must not die of
    the same keypress.
    """
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_IGN)


class _Inbox:
    """The tasks the engine sent, read off the pipe by a thread as soon as they arrive.

    The engine sends tasks ahead while a handler runs; if the child read its pipe only between
    tasks, a pipe buffer full of queued payloads would block the engine's ``send`` (its only
    thread) until the handler returned: no lease renewals, no outcome writes meanwhile. The
    reader thread keeps the pipe empty, and notices at once when the engine is gone (EOF).
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ready = threading.Condition()
        self._tasks: deque[Task] = deque()
        self._stop = False  # the engine sent None: answer with the unstarted tasks, exit
        self._closed = False  # the pipe closed (the engine died): run nothing more, exit

    def read(self) -> None:
        """The reader thread's body: move what arrives into the inbox until None or EOF."""
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                with self._ready:
                    self._closed = True
                    self._ready.notify()
                return
            with self._ready:
                if message is None:
                    self._stop = True
                else:
                    self._tasks.extend(message)
                self._ready.notify()
            if message is None:
                return

    def next_task(self) -> Task | None:
        """Wait for the next task; None once the child must exit.

        On a stop request it first sends the ids of the tasks it never started.
        """
        with self._ready:
            while not (self._tasks or self._stop or self._closed):
                self._ready.wait()
            if self._closed:
                return None
            if self._stop:
                unstarted = [task.id for task in self._tasks]
                self._tasks.clear()
                with suppress(OSError):  # the engine died meanwhile
                    self._conn.send(("unstarted", unstarted))
                return None
            return self._tasks.popleft()


def executor_main(conn: Connection, references: Mapping[str, str]) -> None:
    """The body of an executor process (the target of the spawn child).

    Receives lists of tasks and runs them in order, sending each outcome as soon as its
    handler returns. On ``None`` it sends the ids of the tasks it never started and exits
    after the running one; when its pipe closes (the engine died) it starts no further task
    and exits after the running one.
    """
    ignore_stop_signals()
    try:
        handlers = {task_type: resolve_handler(ref) for task_type, ref in references.items()}
    except Exception as exc:  # the engine reports it and stops: no handler can run here
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))
    inbox = _Inbox(conn)
    # A daemon thread: it may be blocked in recv() when the child exits after a stop.
    threading.Thread(target=inbox.read, name="executor-inbox", daemon=True).start()
    while (task := inbox.next_task()) is not None:
        outcome = run_handler(handlers, task)
        # Sent before the next task starts: if that task kills the process, the engine knows
        # exactly which task was running, and no finished task's outcome dies with it.
        try:
            conn.send(("outcomes", [outcome]))
        except OSError:
            return  # the engine is gone


def run_handler(handlers: Mapping[str, Handler], task: Task) -> tuple[Any, ...]:
    """Run the task's handler and return the outcome tuple the engine expects."""
    try:
        handlers[task.type](task)
    except Retry as retry:
        return ("retry", task.id, retry.after, str(retry))
    except BaseException:  # SystemExit and MemoryError too: the task fails, the child lives on
        text = traceback.format_exc()
        return ("error", task.id, error_summary(text), text)
    return ("done", task.id)
