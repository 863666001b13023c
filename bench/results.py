"""The results contract: the typed model of ``results.json``, its schema version, reading and
writing it, one number formatter and one "did this scenario run OK" rule.

Every reader (gate, compare, plots, report) works on :class:`Run` and never on raw JSON. Each
scenario declares its own typed ``Params`` and ``Result`` records in its module (see
``bench/scenarios/__init__.py``); this module decodes a scenario's entry with the types that
scenario registers. ``bench/RESULTS.md`` is generated from these records
(``python -m bench schema --write bench/RESULTS.md``) and a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

SCHEMA_NAME = "prismq-bench"
SCHEMA_MAJOR = 2
SCHEMA_MINOR = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_MAJOR}.{SCHEMA_MINOR}"
READABLE_MAJORS = (1, 2)
"""Major 1 wrote each scenario's params twice (top-level ``parameters`` too); 2 writes them once.
Minor versions only add fields, with defaults, so every reader of the major reads them:
2.1 adds the run's ``backend`` (files without it measured SQLite) and ``postgres``."""

Status = Literal["ok", "error", "skipped"]
Backend = Literal["sqlite", "postgres"]
Verdict = Literal["PASS", "FAIL", "NOT_MEASURED"]
Op = Literal["<", ">"]
PASS: Verdict = "PASS"
FAIL: Verdict = "FAIL"
NOT_MEASURED: Verdict = "NOT_MEASURED"

# The ids of the specification's five metrics: the one spelling gate, compare and plots share.
INIT_MS = "init_ms"
CONNECT_MS = "connect_ms"
TX_PER_S = "tx_per_s"
BUSY_RATE_PCT = "busy_rate_pct"
COVERAGE_PCT = "coverage_pct"

T = TypeVar("T")


class ResultsError(ValueError):
    """A results.json that this version cannot read; the message is one line saying why."""


# --------------------------------------------------------------------------- shared records


@dataclass(frozen=True)
class Latency:
    """Percentiles of per-call samples, in ms (None when there were no samples)."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True)
class Shares:
    """How evenly processes shared the work: the smallest and largest count over the mean, and
    Jain's fairness index (1 when all did the same, ``1/n`` when one did everything); None
    when nothing was done."""

    min_over_mean: float | None
    max_over_mean: float | None
    jain: float | None


@dataclass(frozen=True)
class Histogram:
    """Log-spaced (10 bins per decade) counts of raw samples: ``len(edges_ms) == len(counts)+1``."""

    edges_ms: tuple[float, ...]
    counts: tuple[int, ...]
    n: int


@dataclass(frozen=True)
class Accounting:
    """Exactly-once accounting of one measurement (see ``bench.accounting``)."""

    expected: int
    completed: int
    duplicates: int
    lost: int
    ok: bool
    unexpected: int = 0
    db_completed: int | None = None
    rows_in_db: int | None = None


@dataclass(frozen=True)
class ProcessSample:
    """One psutil sample of one process."""

    t_s: float
    pid: int
    role: str
    cpu_percent: float
    rss_bytes: int
    read_bytes: int | None
    write_bytes: int | None


@dataclass(frozen=True)
class FileSample:
    """The size of the watched database and its ``-wal`` at one moment."""

    t_s: float
    db_bytes: int
    wal_bytes: int


@dataclass(frozen=True)
class Resources:
    """What the sampler recorded while the scenario ran."""

    interval_s: float
    processes: tuple[ProcessSample, ...] = ()
    files: tuple[FileSample, ...] = ()


@dataclass(frozen=True)
class Environment:
    """What the numbers were measured on (see ``bench.environment``); None when unknown."""

    os: str
    python: str
    sqlite_version: str
    os_version: str | None = None
    os_release: str | None = None
    platform: str | None = None
    machine: str | None = None
    python_implementation: str | None = None
    python_executable: str | None = None
    cpu: str | None = None
    cores_logical: int | None = None
    cores_physical: int | None = None
    ram_bytes: int | None = None
    filesystem: str | None = None
    cwd_filesystem: str | None = None
    workdir: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    defender_realtime: bool | None = None
    ci: str | None = None


@dataclass(frozen=True)
class PostgresServer:
    """The PostgreSQL server a run measured: ``throwaway`` (started for the run on this
    machine, sharing its cores) or ``dsn`` (given with ``--dsn``); ``url`` without its
    password; ``settings`` as the server reported them (``SHOW fsync`` ...)."""

    source: Literal["throwaway", "dsn"]
    url: str
    version: str | None = None
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One correctness check; any failing one fails the run."""

    scenario: str
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Correctness:
    """``ok`` is false if any task was lost or duplicated, or a scenario raised."""

    ok: bool
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class MetricVerdict:
    """One success metric of the specification, judged against its limit."""

    id: str
    label: str
    value: float | None
    unit: str
    limit: float
    op: Op
    statistic: str
    status: Verdict
    source: str


@dataclass(frozen=True)
class BenchmarkStats:
    """pytest-benchmark's statistics of one benchmark, in seconds."""

    min: float | None = None
    max: float | None = None
    mean: float | None = None
    median: float | None = None
    stddev: float | None = None
    rounds: int | None = None
    iterations: int | None = None
    ops: float | None = None


@dataclass(frozen=True)
class Benchmark:
    name: str | None
    fullname: str | None
    stats: BenchmarkStats
    extra_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PytestBenchmark:
    """The pytest-benchmark JSON folded in by ``--pytest-benchmark-json``."""

    file: str
    benchmarks: tuple[Benchmark, ...] = ()


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario's entry: how it went, its typed params and, when it ran OK, its result.

    On disk the result's fields (``summary``, ``series``, ...) sit beside ``status`` and
    ``params`` in the scenario's object.
    """

    name: str
    status: Status
    error: str | None
    duration_s: float
    params: Any
    result: Any | None
    resources: Resources

    @property
    def ok(self) -> bool:
        """The one rule: a scenario ran OK when its status is ``ok`` and it has a result."""
        return self.status == "ok" and self.result is not None

    def why_not(self) -> str:
        """Why this scenario has no usable result (for a skipped plot or an n/a figure)."""
        if self.status == "ok" and self.result is None:
            return f"scenario '{self.name}' is not one this harness knows"
        error = f": {self.error}" if self.error else ""
        return f"scenario '{self.name}' has status '{self.status}'{error}"


@dataclass(frozen=True)
class Run:
    """One ``python -m bench run``: the root of results.json."""

    schema: str
    run_id: str
    profile: str
    started_utc: str
    finished_utc: str | None
    duration_s: float | None
    command: tuple[str, ...]
    environment: Environment
    scenarios: dict[str, ScenarioRun]
    correctness: Correctness
    metrics: tuple[MetricVerdict, ...]
    passed: bool
    pytest_benchmark: PytestBenchmark | None = None
    backend: Backend = "sqlite"
    postgres: PostgresServer | None = None

    def result(self, name: str, kind: type[T]) -> T | None:
        """Scenario ``name``'s typed result if it ran OK (see :attr:`ScenarioRun.ok`), else None."""
        found = self.scenarios.get(name)
        if found is None or not found.ok or not isinstance(found.result, kind):
            return None
        return found.result

    def why_not(self, name: str) -> str:
        """Why scenario ``name`` has no result: not run, or its status and error."""
        found = self.scenarios.get(name)
        return f"scenario '{name}' did not run" if found is None else found.why_not()

    def metric(self, metric_id: str) -> MetricVerdict | None:
        return next((m for m in self.metrics if m.id == metric_id), None)


# --------------------------------------------------------------------------- formatting


def fmt_number(value: object, unit: str = "") -> str:
    """The one number rule for people: 1000 or more gets a thousands separator, else 3
    significant digits; None is "n/a", a bool "yes"/"no"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
        return f"{text} {unit}".strip()
    return str(value)


# --------------------------------------------------------------------------- encoding


def to_jsonable(value: Any) -> Any:
    """A record (or anything made of records, tuples, dicts and scalars) as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def scenario_json(entry: ScenarioRun) -> dict[str, Any]:
    result = {} if entry.result is None else to_jsonable(entry.result)
    return {
        "status": entry.status,
        "error": entry.error,
        "duration_s": entry.duration_s,
        "params": to_jsonable(entry.params),
        **result,
        "resources": to_jsonable(entry.resources),
    }


def run_json(run: Run) -> dict[str, Any]:
    """``run`` as the results.json object (current schema)."""
    data = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)}
    data["scenarios"] = {name: scenario_json(s) for name, s in run.scenarios.items()}
    for optional in ("pytest_benchmark", "postgres"):
        if data[optional] is None:
            del data[optional]
    return {k: v if k == "scenarios" else to_jsonable(v) for k, v in data.items()}


def write(run: Run, path: Path) -> Path:
    """Write ``run`` to ``path`` as results.json (indented, no NaN)."""
    text = json.dumps(run_json(run), indent=1, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- decoding


def decode(kind: Any, data: Any, where: str = "") -> Any:
    """``data`` (parsed JSON) as ``kind``: a record, ``X | None``, ``tuple[X, ...]``,
    ``dict[str, X]``, a ``Literal`` or a scalar. Unknown keys are ignored (readers must ignore
    keys they do not know); a missing key takes the field's default.

    :raises ResultsError: a value does not have the declared shape; the message names its path.
    """
    origin = typing.get_origin(kind)
    if kind is Any or kind is object:
        return data
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return decode(option, data, where)
            except ResultsError:
                continue
        raise ResultsError(f"{where or 'value'}: {data!r} is not {_type_text(kind)}")
    if origin is Literal:
        if data not in typing.get_args(kind):
            raise ResultsError(f"{where}: {data!r} is not one of {typing.get_args(kind)}")
        return data
    if origin is tuple:
        (item, *_) = typing.get_args(kind)
        if not isinstance(data, list | tuple):
            raise ResultsError(f"{where}: expected a list, got {type(data).__name__}")
        return tuple(decode(item, v, f"{where}[{i}]") for i, v in enumerate(data))
    if origin in (dict, Mapping):
        _, item = typing.get_args(kind)
        if not isinstance(data, Mapping):
            raise ResultsError(f"{where}: expected an object, got {type(data).__name__}")
        return {str(k): decode(item, v, f"{where}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, Mapping):
            raise ResultsError(f"{where}: expected an object, got {type(data).__name__}")
        return _record(kind, data, where)
    if kind is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data) if math.isfinite(data) else math.nan
        raise ResultsError(f"{where}: expected a number, got {data!r}")
    if kind in (int, str, bool):
        if isinstance(data, kind) and not (kind is int and isinstance(data, bool)):
            return data
        raise ResultsError(f"{where}: expected {kind.__name__}, got {data!r}")
    raise ResultsError(f"{where}: cannot read a {kind!r}")  # pragma: no cover


def _record(kind: Any, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if not f.init:
            continue
        if f.name in data:
            values[f.name] = decode(hints[f.name], data[f.name], f"{where}.{f.name}".lstrip("."))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ResultsError(f"{where or kind.__name__}: missing {f.name!r}")
    return kind(**values)


def _type_text(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def schema_major(text: object) -> int:
    """The major version of a ``schema`` string such as ``prismq-bench/2``.

    :raises ResultsError: not a prismq-bench schema, or a major version this reader does not know.
    """
    name, _, version = str(text).partition("/")
    major_text = version.split(".")[0]
    if name != SCHEMA_NAME or not major_text.isdigit():
        raise ResultsError(f"not a {SCHEMA_NAME} results file (schema {text!r})")
    major = int(major_text)
    if major not in READABLE_MAJORS:
        raise ResultsError(
            f"results schema {text!r} is newer than this harness reads "
            f"({', '.join(f'{SCHEMA_NAME}/{m}' for m in READABLE_MAJORS)}); update the harness"
        )
    return major


def from_dict(data: Mapping[str, Any]) -> Run:
    """A parsed results.json object as a :class:`Run` (any readable major version).

    :raises ResultsError: unknown schema version, or a value of the wrong shape.
    """
    from bench import scenarios

    if not isinstance(data, Mapping):
        raise ResultsError("not a results.json object")
    major = schema_major(data.get("schema"))
    legacy_params = data.get("parameters") if major == 1 else None
    entries: dict[str, ScenarioRun] = {}
    for name, raw in (data.get("scenarios") or {}).items():
        if not isinstance(raw, Mapping):
            raise ResultsError(f"scenarios.{name}: expected an object")
        where = f"scenarios.{name}"
        status = decode(Status, raw.get("status"), f"{where}.status")
        spec = scenarios.SPECS.get(name)
        raw_params = raw.get("params")
        if raw_params is None and isinstance(legacy_params, Mapping):
            raw_params = legacy_params.get(name)
        params: Any = raw_params
        result: Any = None
        if spec is not None:
            params = None if raw_params is None else decode(spec.params, raw_params, where)
            if status == "ok":
                result = decode(spec.result, raw, where)
        entries[name] = ScenarioRun(
            name=name,
            status=status,
            error=decode(str | None, raw.get("error"), f"{where}.error"),
            duration_s=decode(float, raw.get("duration_s", 0.0), f"{where}.duration_s"),
            params=params,
            result=result,
            resources=decode(Resources, raw.get("resources") or {"interval_s": 0.0}, where),
        )
    top = {k: v for k, v in data.items() if k not in ("scenarios", "parameters")}
    run: Run = decode(
        Run, {**top, "scenarios": {}, "correctness": data.get("correctness") or {"ok": False}}, ""
    )
    return dataclasses.replace(run, scenarios=entries)


def load(path: Path) -> Run:
    """Read one results.json.

    :raises ResultsError: unreadable, not JSON, an unknown major version or a malformed value;
        the message is one line that starts with the path.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ResultsError(f"{path}: not JSON ({exc})") from exc
    try:
        return from_dict(data)
    except ResultsError as exc:
        raise ResultsError(f"{path}: {exc}") from exc
