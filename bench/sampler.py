"""A background thread that samples CPU %, RSS and I/O of the run's processes, and file sizes.

It watches this process and all of its children (recursively), so the workers a scenario
starts are picked up as they appear. File sizes come from ``os.stat`` only: this process holds
SQLite connections, and opening the db, ``-wal`` or ``-shm`` file here would break SQLite's
POSIX locks (closing any descriptor of a file drops every lock this process has on it).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import psutil

from bench.results import FileSample, ProcessSample, Resources


def file_size(path: Path) -> int:
    """The size of ``path`` in bytes, 0 when it does not exist (a WAL can vanish any time)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


class ResourceSampler:
    """Samples processes and files every ``interval_s`` seconds between start() and stop()."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.processes: list[ProcessSample] = []
        self.files: list[FileSample] = []
        self._roles: dict[int, str] = {}
        self._known: dict[int, psutil.Process] = {}
        self._db_path: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._lock = threading.Lock()
        self._me = psutil.Process(os.getpid())

    def watch(self, db_path: Path | None) -> None:
        """Sample the sizes of this database file and its ``-wal`` from now on."""
        with self._lock:
            self._db_path = db_path

    def set_role(self, pid: int | None, role: str) -> None:
        """Label a child process ("producer", "worker", ...); unlabelled children are "child"."""
        if pid is not None:
            with self._lock:
                self._roles[pid] = role

    def start(self) -> None:
        self._started = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> Resources:
        """Stop sampling and return what was recorded."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        return Resources(self.interval_s, tuple(self.processes), tuple(self.files))

    def __enter__(self) -> ResourceSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_once()

    def _processes(self) -> list[psutil.Process]:
        found = [self._me]
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            found.extend(self._me.children(recursive=True))
        return found

    def sample_once(self) -> None:
        """Take one sample of every process and of the watched files."""
        t_s = round(time.perf_counter() - self._started, 3)
        with self._lock:
            roles = dict(self._roles)
            db_path = self._db_path
        for proc in self._processes():
            pid = proc.pid
            known = self._known.get(pid)
            if known is None:
                # cpu_percent's first call only primes the counter; record from the next one.
                self._known[pid] = proc
                with contextlib.suppress(
                    psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess
                ):
                    proc.cpu_percent(None)
                continue
            try:
                with known.oneshot():
                    cpu = known.cpu_percent(None)
                    rss = known.memory_info().rss
                    try:
                        io = known.io_counters()  # type: ignore[attr-defined, unused-ignore]
                        read_bytes: int | None = int(io.read_bytes)
                        write_bytes: int | None = int(io.write_bytes)
                    except (AttributeError, NotImplementedError, psutil.AccessDenied):
                        read_bytes = write_bytes = None  # macOS has no io_counters
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            role = "parent" if pid == self._me.pid else roles.get(pid, "child")
            self.processes.append(
                ProcessSample(
                    t_s=t_s,
                    pid=pid,
                    role=role,
                    cpu_percent=round(cpu, 1),
                    rss_bytes=int(rss),
                    read_bytes=read_bytes,
                    write_bytes=write_bytes,
                )
            )
        if db_path is not None:
            self.files.append(
                FileSample(
                    t_s=t_s,
                    db_bytes=file_size(db_path),
                    wal_bytes=file_size(Path(f"{db_path}-wal")),
                )
            )
