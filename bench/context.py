"""What a scenario gets from the runner, and the one way scenarios start processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bench.backends import create_postgres_database, drop_postgres_database, open_queue_db
from bench.results import Backend, Check

if TYPE_CHECKING:
    from bench.sampler import ResourceSampler
    from bench.workers import WorkerArgs

P = TypeVar("P")

SPAWN = multiprocessing.get_context("spawn")
"""Every process of the harness is started with ``spawn``, as on Windows."""


@dataclass(frozen=True)
class Job:
    """One process to start: ``args.run`` in a spawn process, with a sampler role."""

    args: WorkerArgs
    role: str
    daemon: bool = True  # False for a job that starts processes itself (a worker engine)

    @property
    def kind(self) -> str:
        return type(self.args).__name__


@dataclass
class ScenarioContext(Generic[P]):
    """The fresh temporary directory, typed parameters, sampler and progress printer of a
    scenario."""

    name: str
    profile: str
    params: P
    workdir: Path
    sampler: ResourceSampler
    progress: Callable[[str], None] = print
    checks: list[Check] = field(default_factory=list)
    process_timeout_s: float = 300.0
    backend: Backend = "sqlite"
    server_url: str | None = None  # PostgreSQL: the server new databases are created on
    _created: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        """A progress line under the scenario's name."""
        self.progress(f"  {self.name}: {message}")

    def new_db_path(self, label: str) -> Path:
        """A database path in a new sub-directory (not created yet); the sampler watches it."""
        folder = self.workdir / label
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "queue.db"
        self.sampler.watch(path)
        return path

    def new_database(self, label: str) -> str:
        """A new queue database with its schema, named by its target: a file path on SQLite
        (in a new sub-directory the sampler watches), a ``postgresql://`` URL on PostgreSQL
        (a new database on the run's server, dropped by :meth:`cleanup`).

        Created here, in the parent, before any child starts: processes racing
        ``PRAGMA journal_mode=WAL`` on a new file get SQLITE_BUSY at once.
        """
        if self.backend == "postgres":
            if self.server_url is None:
                raise RuntimeError("a PostgreSQL scenario needs the run's server URL")
            url = create_postgres_database(self.server_url, f"{self.name}_{label}")
            self._created.append(url)
            return url
        path = self.new_db_path(label)
        with contextlib.closing(open_queue_db(str(path))) as db:
            db.initialize_schema()
        return str(path)

    def cleanup(self) -> None:
        """Drop the PostgreSQL databases :meth:`new_database` created (SQLite's files go with
        the scenario's directory)."""
        while self._created:
            url = self._created.pop()
            if self.server_url is not None:
                drop_postgres_database(self.server_url, url)

    def check(self, name: str, ok: bool, detail: str) -> None:
        """Record a correctness check; any failing one fails the whole run."""
        self.checks.append(Check(scenario=self.name, name=name, ok=bool(ok), detail=detail))

    def run_processes(self, jobs: Sequence[Job], *, timeout_s: float | None = None) -> list[Any]:
        """Start ``jobs`` as spawn processes, release them together, return their outcome
        records in order (each worker kind's ``*Outcome``).

        Every wait is bounded: a process that does not start, report or exit in time is killed
        and the call raises, so a deadlock fails the scenario instead of hanging CI.
        """
        return run_processes(self.sampler, jobs, timeout_s or self.process_timeout_s)


def run_processes(
    sampler: ResourceSampler | None, jobs: Sequence[Job], timeout_s: float
) -> list[Any]:
    from bench import workers

    count = len(jobs)
    barrier = SPAWN.Barrier(count + 1)
    results: Any = SPAWN.Queue()
    processes: list[Any] = []
    start_timeout = 60.0 + 5.0 * count
    collected: dict[int, Any] = {}
    try:
        for index, job in enumerate(jobs):
            process = SPAWN.Process(
                target=workers.entry,
                args=(job.args, start_timeout, barrier, results, index),
                name=f"bench-{job.kind}-{index}",
                daemon=job.daemon,
            )
            process.start()
            processes.append(process)
            if sampler is not None:
                sampler.set_role(process.pid, job.role)
        # A child that failed before it was ready breaks the barrier; its error arrives below.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=start_timeout)
        deadline = time.monotonic() + timeout_s
        while len(collected) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{count - len(collected)} of {count} benchmark processes did not report "
                    f"within {timeout_s:.0f} s"
                )
            try:
                index, outcome = results.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                dead = [
                    p.name
                    for i, p in enumerate(processes)
                    if i not in collected and p.exitcode is not None
                ]
                if dead:
                    # Give a dying process's last message a moment to arrive.
                    try:
                        index, outcome = results.get(timeout=2.0)
                    except queue.Empty:
                        raise RuntimeError(
                            f"benchmark processes exited without a result: {dead}"
                        ) from None
                else:
                    continue
            collected[index] = outcome
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        results.close()
        results.join_thread()
    errors = [o.error for o in collected.values() if isinstance(o, workers.Failed)]
    if errors:
        raise RuntimeError("a benchmark process failed:\n" + errors[0])
    return [collected[index] for index in range(count)]
