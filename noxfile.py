"""Developer and CI entry points: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
ROOT = Path(__file__).parent
REPORTS = ROOT / "reports"
# GitHub Actions and .ci/run set CI (to "true"); nox's own default uses the same test.
ON_CI = "CI" in os.environ

nox.options.sessions = ["tests", "lint"]
# A developer's `nox -s tests` runs on every listed Python that is installed and skips the
# others. On CI a missing interpreter is an error, and none is downloaded in its place: a
# matrix cell must not turn green without running the tests on the Python it names. GitHub
# jobs pass setup-python's interpreter by path (--force-python), because nox looks for
# `python3.X` by name and setup-python installs no such file on Windows (nox issue #986).
nox.options.error_on_missing_interpreters = ON_CI
if ON_CI:
    nox.options.download_python = "never"


# Linters are pinned so a new release cannot turn a green main red overnight.
LINTERS = ["ruff==0.17.6", "mypy==2.4.1", "types-psutil"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit and integration tests with coverage (>= 90% line and branch on queue_core)."""
    # The harness's own tests (scenarios at tiny size, plots) need its extras too.
    session.install("-e", ".[bench,test]")
    REPORTS.mkdir(exist_ok=True)
    session.run(
        "pytest",
        "--cov=queue_core",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        f"--cov-report=json:{REPORTS / 'coverage.json'}",
        "--cov-fail-under=90",
        "--benchmark-disable",
        *session.posargs,
        env={"PYTHONWARNDEFAULTENCODING": "1"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, ruff format, mypy --strict, and offline checks of the GitHub workflows."""
    session.install("-e", ".[bench,test]", *LINTERS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict", "queue_core", "bench")
    workflows = sorted(str(path) for path in (ROOT / ".github" / "workflows").glob("*.yml"))
    if workflows:
        session.install("check-jsonschema==0.39.0", "zizmor==1.32.0")
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
        session.run("zizmor", "--offline", "--config", ".github/zizmor.yml", *workflows)


@nox.session
def bench(session: nox.Session) -> None:
    """Stress scenarios in real processes, checked against the success metrics.

    ``nox -s bench`` runs the default profile (under 15 minutes); ``nox -s bench -- --quick``
    the CI profile (under 5 minutes). Results, plots and a summary land in reports/<run-id>/.
    """
    session.install("-e", ".[bench,test]")
    REPORTS.mkdir(exist_ok=True)
    pytest_json = REPORTS / "pytest-benchmark.json"
    pytest_json.unlink(missing_ok=True)
    # The pytest-benchmark tests (run once, unmeasured, in `nox -s tests`) are measured here;
    # their JSON is folded into results.json under "pytest_benchmark".
    session.run(
        "pytest",
        "tests/benchmarks",
        "--benchmark-only",
        f"--benchmark-json={pytest_json}",
        "-p",
        "no:cacheprovider",
    )
    session.run(
        "python",
        "-m",
        "bench",
        "run",
        f"--pytest-benchmark-json={pytest_json}",
        *session.posargs,
        env={"MPLBACKEND": "Agg"},
    )


if __name__ == "__main__":
    sys.exit("run this file with nox")
