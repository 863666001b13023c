"""Static checks of rules Windows enforces and Linux forgives."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A multiprocessing object created straight from the module uses the platform's default start
# method (fork on Linux up to 3.13), which hides bugs that only spawn, Windows' only method,
# shows. Every process, queue, event, barrier and pool must come from an explicit context.
IMPLICIT_CONTEXT = re.compile(
    r"\bmultiprocessing\.(Process|Pool|Queue|SimpleQueue|JoinableQueue|Event|Barrier|Lock|"
    r"Manager|Value|Array)\("
)
EXPLICIT_FORK = re.compile(r"get_context\(\s*[\"']fork")


def python_files() -> list[Path]:
    return sorted((ROOT / "bench").rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py"))


def test_multiprocessing_always_takes_an_explicit_context() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in python_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if IMPLICIT_CONTEXT.search(line) and "IMPLICIT_CONTEXT" not in line
    ]
    assert offenders == []


def test_fork_is_used_only_by_the_test_that_checks_fork_safety() -> None:
    users = [
        path.relative_to(ROOT).as_posix()
        for path in python_files()
        if EXPLICIT_FORK.search(path.read_text(encoding="utf-8"))
        and path.name != "test_windows_discipline.py"
    ]
    assert users == ["tests/integration/test_database.py"]


def test_the_harness_uses_spawn() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "bench").rglob("*.py"))
    assert 'get_context("spawn")' in text
