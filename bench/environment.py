"""What the numbers were measured on: OS, Python, SQLite, CPU, RAM, filesystem, git, Defender.

Everything that asks the operating system goes through :class:`System`, so tests can pass a
fake (for example one that pretends to be Windows with Defender's real-time scanning on).
"""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil

from bench.results import Environment

DEFENDER_PROBE = [
    "powershell",
    "-NoProfile",
    "-Command",
    "(Get-MpComputerStatus).RealTimeProtectionEnabled",
]
"""Prints True/False where Defender's status can be read (needs no admin rights)."""


class System:
    """The OS seam of :func:`collect`. Every method returns None when it cannot answer."""

    def name(self) -> str:
        return platform.system()

    def run(
        self, command: list[str], *, timeout: float = 10.0, cwd: Path | None = None
    ) -> str | None:
        """The stripped stdout of ``command``, or None if it fails, is missing or times out."""
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                cwd=cwd,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if completed.returncode != 0:
            return None
        return completed.stdout.strip()

    def read_text(self, path: str) -> str | None:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def env(self, name: str) -> str | None:
        return os.environ.get(name)


def cpu_name(system: System) -> str | None:
    """The CPU's marketing name where the OS tells it."""
    name = system.name()
    if name == "Linux":
        text = system.read_text("/proc/cpuinfo") or ""
        for line in text.splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    elif name == "Darwin":
        found = system.run(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=5)
        if found:
            return found
    return platform.processor() or None


def filesystem_of(path: Path) -> str | None:
    """The filesystem type of the mount that holds ``path`` (longest matching mount point)."""
    try:
        target = os.path.normcase(str(path.resolve()))
        partitions = psutil.disk_partitions(all=True)
    except (OSError, RuntimeError):
        return None
    best: tuple[int, str] | None = None
    for partition in partitions:
        mount = os.path.normcase(partition.mountpoint)
        inside = target == mount or target.startswith(mount.rstrip("\\/") + os.sep)
        if (inside or mount in ("/", target[:3])) and (best is None or len(mount) > best[0]):
            best = (len(mount), partition.fstype or "")
    return best[1] if best and best[1] else None


def defender_realtime(system: System) -> bool | None:
    """Whether Windows Defender real-time scanning is on; None off Windows or when unreadable."""
    if system.name() != "Windows":
        return None
    answer = system.run(DEFENDER_PROBE, timeout=20)
    if answer is None:
        return None
    text = answer.strip().lower()
    if text == "true":
        return True
    if text == "false":
        return False
    return None


def git_state(system: System, root: Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout at ``root``; ``(None, None)`` outside one."""
    commit = system.run(["git", "rev-parse", "HEAD"], timeout=10, cwd=root)
    if not commit:
        return None, None
    status = system.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], timeout=20, cwd=root
    )
    return commit, (None if status is None else bool(status))


def ci_name(system: System) -> str | None:
    if system.env("GITHUB_ACTIONS") == "true":
        return "github-actions"
    if system.env("CI"):
        return "ci"
    return None


def collect(
    workdir: Path,
    *,
    system: System | None = None,
    repo_root: Path | None = None,
    cwd: Path | None = None,
) -> Environment:
    """What this run is measured on; ``workdir`` holds the databases, ``cwd`` (default: the
    current directory) is where the run was started."""
    system = system or System()
    root = repo_root or Path(__file__).resolve().parent.parent
    commit, dirty = git_state(system, root)
    try:
        memory: int | None = int(psutil.virtual_memory().total)
    except (OSError, RuntimeError):
        memory = None
    return Environment(
        os=system.name(),
        os_version=platform.version(),
        os_release=platform.release(),
        platform=platform.platform(),
        machine=platform.machine(),
        python=platform.python_version(),
        python_implementation=platform.python_implementation(),
        python_executable=Path(sys.executable).name,
        sqlite_version=sqlite3.sqlite_version,
        cpu=cpu_name(system),
        cores_logical=psutil.cpu_count(logical=True),
        cores_physical=psutil.cpu_count(logical=False),
        ram_bytes=memory,
        filesystem=filesystem_of(workdir),
        cwd_filesystem=filesystem_of(cwd or Path.cwd()),
        workdir=str(workdir),
        git_commit=commit,
        git_dirty=dirty,
        defender_realtime=defender_realtime(system),
        ci=ci_name(system),
    )
