"""A realistic, deterministic ``results.json`` (see bench/RESULTS.md) for report and compare tests.

``make_results()`` returns a fresh dict each call, so a test may mutate it freely;
``make_run()`` is the same through the results model. The numbers are shaped like a quick Linux
run (throughput falls and latency rises with processes, a busy timeout of 0 ms produces errors,
the default checkpoint variant stalls).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from bench import results as model

PROCESSES = [1, 2, 4, 8]
BUSY_TIMEOUTS = [0, 100, 5000]
BACKLOGS = [1_000, 10_000, 100_000]
CHECKPOINT_VARIANTS = ["autocheckpoint", "passive_thread"]


def _latency(p50: float) -> dict[str, float]:
    return {"p50": p50, "p95": round(p50 * 2.5, 3), "p99": round(p50 * 4, 3), "max": p50 * 9}


def _hist(n: int) -> dict[str, Any]:
    return {"edges_ms": [0.1, 1.0, 10.0], "counts": [n - n // 10, n // 10], "n": n}


def _once(tasks: int) -> dict[str, Any]:
    return {"expected": tasks, "completed": tasks, "duplicates": 0, "lost": 0, "ok": True}


def _resources(duration_s: float, workers: int) -> dict[str, Any]:
    interval = 0.25
    steps = max(2, int(duration_s / interval))
    processes: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for i in range(1, steps + 1):
        t = round(i * interval, 3)
        processes.append(
            {
                "t_s": t,
                "pid": 1000,
                "role": "parent",
                "cpu_percent": 3.0 + (i % 3),
                "rss_bytes": 40_000_000 + 10_000 * i,
                "read_bytes": 0,
                "write_bytes": 0,
            }
        )
        for w in range(workers):
            processes.append(
                {
                    "t_s": t,
                    "pid": 2000 + w,
                    "role": "worker",
                    "cpu_percent": 60.0 + 10 * math.sin(i / 3 + w),
                    "rss_bytes": 30_000_000 + 50_000 * i,
                    "read_bytes": 4096 * i,
                    "write_bytes": 8192 * i,
                }
            )
        files.append({"t_s": t, "db_bytes": 4096 * (10 + i), "wal_bytes": 4096 * (i % 40) * 25})
    return {"interval_s": interval, "processes": processes, "files": files}


def _samples_scenario(median: float, extra: str, n: int = 20) -> dict[str, Any]:
    ms = [round(median * (0.8 + 0.02 * i), 3) for i in range(n)]
    ordered = sorted(ms)
    return {
        "status": "ok",
        "error": None,
        "duration_s": 1.5,
        "params": {"repetitions": n},
        "summary": {
            extra: round(median * 1.5, 3),
            "n": n,
            "min_ms": ordered[0],
            "median_ms": (ordered[n // 2 - 1] + ordered[n // 2]) / 2,
            "mean_ms": sum(ms) / n,
            "p95_ms": ordered[int(0.95 * (n - 1))],
            "max_ms": ordered[-1],
        },
        "samples": {"ms": ms},
        "resources": _resources(1.5, 0),
    }


def _insert() -> dict[str, Any]:
    series: list[dict[str, Any]] = []
    for mode, base, batch in (("single", 900.0, 1), ("batch", 40_000.0, 100)):
        for p in PROCESSES:
            rate = base * (1 + 0.3 * math.log2(p)) / (1 + 0.1 * p)
            bare = rate * 1.4
            tasks = 2000 * p
            series.append(
                {
                    "mode": mode,
                    "processes": p,
                    "batch_size": batch,
                    "tasks": tasks,
                    "calls": tasks // batch,
                    "seconds": tasks / rate,
                    "tasks_per_s": round(rate, 1),
                    "latency_ms": _latency(round(1.1 * p * batch**0.5, 3)),
                    "latency_hist": _hist(tasks // batch),
                    "bare_tasks_per_s": round(bare, 1),
                    "bare_latency_ms": _latency(round(0.8 * p * batch**0.5, 3)),
                    "ratio_vs_bare": round(rate / bare, 3),
                }
            )
    one = {row["mode"]: row for row in series if row["processes"] == 1}
    four = {row["mode"]: row for row in series if row["processes"] == 4}
    return {
        "status": "ok",
        "error": None,
        "duration_s": 20.0,
        "params": {
            "processes": PROCESSES,
            "single_tasks": 2000,
            "batch_tasks": 2000,
            "batch_size": 100,
            "pad_bytes": 200,
        },
        "summary": {
            "single_tasks_per_s_1p": one["single"]["tasks_per_s"],
            "batch_tasks_per_s_1p": one["batch"]["tasks_per_s"],
            "ratio_single_1p": one["single"]["ratio_vs_bare"],
            "ratio_batch_1p": one["batch"]["ratio_vs_bare"],
            "single_tasks_per_s_4p": four["single"]["tasks_per_s"],
            "batch_tasks_per_s_4p": four["batch"]["tasks_per_s"],
            "ratio_single_4p": four["single"]["ratio_vs_bare"],
            "ratio_batch_4p": four["batch"]["ratio_vs_bare"],
            "best_single_tasks_per_s": max(
                r["tasks_per_s"] for r in series if r["mode"] == "single"
            ),
            "best_batch_tasks_per_s": max(r["tasks_per_s"] for r in series if r["mode"] == "batch"),
        },
        "series": series,
        "resources": _resources(4.0, 2),
    }


def _claim() -> dict[str, Any]:
    series: list[dict[str, Any]] = []
    for p in PROCESSES:
        tx = 700.0 / (1 + 0.15 * p)
        tasks = 2000
        series.append(
            {
                "processes": p,
                "tasks": tasks,
                "transactions": tasks * 2,
                "seconds": tasks * 2 / tx,
                "tx_per_s": round(tx, 1),
                "tasks_per_s": round(tx / 2, 1),
                "latency_ms": _latency(round(1.4 * p, 3)),
                "claim_latency_ms": _latency(round(0.9 * p, 3)),
                "complete_latency_ms": _latency(round(0.5 * p, 3)),
                "latency_hist": _hist(tasks),
                "bare_tasks_per_s": round(tx / 2 * 1.3, 1),
                "bare_tx_per_s": round(tx * 1.3, 1),
                "bare_latency_ms": _latency(round(1.1 * p, 3)),
                "ratio_vs_bare": round(1 / 1.3, 3),
                "exactly_once": _once(tasks),
                "bare_exactly_once": _once(tasks),
            }
        )
    by_p = {row["processes"]: row for row in series}
    return {
        "status": "ok",
        "error": None,
        "duration_s": 25.0,
        "params": {"processes": PROCESSES, "backlog": 2000, "pad_bytes": 200},
        "summary": {
            "min_tx_per_s": min(r["tx_per_s"] for r in series),
            "max_tasks_per_s": max(r["tasks_per_s"] for r in series),
            "tasks_per_s_1p": by_p[1]["tasks_per_s"],
            "tasks_per_s_4p": by_p[4]["tasks_per_s"],
            "ratio_1p": by_p[1]["ratio_vs_bare"],
            "ratio_4p": by_p[4]["ratio_vs_bare"],
            "exactly_once_ok": True,
        },
        "series": series,
        "resources": _resources(5.0, 4),
    }


def _busy() -> dict[str, Any]:
    series: list[dict[str, Any]] = []
    for timeout in BUSY_TIMEOUTS:
        for p in PROCESSES:
            for fair in (True, False) if timeout == 5000 else (True,):
                ops = 1000 * p
                rate = {0: 0.02 * p, 100: 0.001 * p, 5000: 0.0}[timeout]
                spread = 0.02 * p if fair else 0.1 * p
                series.append(
                    {
                        "busy_timeout_ms": timeout,
                        "fair_lock": fair,
                        "processes": p,
                        "producers": max(1, p // 2),
                        "workers": max(1, p - p // 2),
                        "operations": ops,
                        "busy_errors": round(ops * rate),
                        "busy_rate": rate,
                        "lock_wait_ms": _latency(0.5 * p if fair else 5.0 * p),
                        "lock_wait_hist": _hist(ops),
                        "seconds": 3.0,
                        "enqueued": ops // 2,
                        "completed": ops // 2,
                        "exactly_once": _once(ops // 2),
                        "operations_per_s": ops / 3.0,
                        "share": {
                            "min_over_mean": round(1 - spread / 2, 3),
                            "max_over_mean": round(1 + spread, 3),
                            "jain": round(1 - spread / 4, 3),
                        },
                    }
                )
    top = max(PROCESSES)
    return {
        "status": "ok",
        "error": None,
        "duration_s": 40.0,
        "params": {
            "busy_timeouts_ms": BUSY_TIMEOUTS,
            "processes": PROCESSES,
            "duration_s": 3.0,
            "backlog": 500,
            "pad_bytes": 200,
        },
        "summary": {
            "max_busy_rate_5000": 0.0,
            "busy_rate_max_processes_5000": 0.0,
            "max_processes": top,
            "at_max_processes": {
                str(r["busy_timeout_ms"]): {
                    "busy_rate": r["busy_rate"],
                    "lock_wait_p50_ms": r["lock_wait_ms"]["p50"],
                    "lock_wait_p99_ms": r["lock_wait_ms"]["p99"],
                    "lock_wait_max_ms": r["lock_wait_ms"]["max"],
                }
                for r in series
                if r["processes"] == top and r["fair_lock"]
            },
        },
        "series": series,
        "resources": _resources(6.0, 3),
    }


def _soak() -> dict[str, Any]:
    t_s = [round(i * 0.25, 3) for i in range(121)]
    file_bytes = [min(900_000, 40_000 + i * 30_000) for i in range(121)]
    wal_bytes = [4_194_304 + (8_000_000 if 48 <= i < 52 else 0) for i in range(121)]
    depth = [i % 3 for i in range(121)]
    claims = [
        {
            "t_s": round(0.5 + i, 3),
            "claims": 380,
            "p50_ms": 0.07,
            "p99_ms": round(1.2 + 0.3 * math.sin(i), 3),
        }
        for i in range(30)
    ]
    prunes = [
        {"t_s": round(2.0 * (k + 1), 3), "deleted": 400 if k else 0, "longest_lock_ms": 4.5}
        for k in range(14)
    ]
    return {
        "status": "ok",
        "error": None,
        "duration_s": 31.0,
        "params": {
            "duration_s": 30.0,
            "producers": 2,
            "workers": 2,
            "rate_per_s": 100.0,
            "pad_bytes": 200,
            "retention_s": 5.0,
            "prune_interval_s": 2.0,
            "backup_at_fraction": 0.4,
            "sample_interval_s": 0.25,
            "work_ms": 5.0,
            "windows": 30,
            "gate": True,
            "size_growth_limit": 1.25,
            "p99_ratio_limit": 1.5,
        },
        "summary": {
            "seconds": 30.0,
            "enqueued": 6000,
            "completed": 5998,
            "pruned": 5200,
            "live_at_end": 2,
            "claim_latency_ms": _latency(0.07),
            "first_third_p99_ms": 1.31,
            "last_third_p99_ms": 1.54,
            "p99_ratio": 1.17,
            "steady": True,
            "max_file_bytes_middle": 900_000,
            "max_file_bytes_last": 900_000,
            "max_wal_bytes_last": 4_194_304,
            "max_wal_bytes": 12_194_304,
            "bounded": True,
            "longest_prune_lock_ms": 4.5,
            "backup_seconds": 0.9,
        },
        "timeline": {
            "t_s": t_s,
            "file_bytes": file_bytes,
            "wal_bytes": wal_bytes,
            "depth": depth,
        },
        "claims": claims,
        "prunes": prunes,
        "backup": {"t_s": 12.0, "seconds": 0.9, "bytes": 900_000, "verified": True, "problems": []},
        "resources": _resources(31.0, 6),
    }


def _checkpoint() -> dict[str, Any]:
    variants: list[dict[str, Any]] = []
    for v, name in enumerate(CHECKPOINT_VARIANTS):
        t_s: list[float] = []
        latency: list[float] = []
        for i in range(600):
            t_s.append(round(i * 0.02, 3))
            spike = 140.0 if (v == 0 and i % 200 == 150) else 0.0
            latency.append(round(1.0 + 0.4 * math.sin(i / 7) ** 2 + spike, 3))
        wal_t = [round(i * 0.25, 3) for i in range(49)]
        wal_bytes = [4096 * 250 * ((i % 16) + 1) for i in range(49)]
        checkpoints = [
            {
                "t_s": round(4.0 * (k + 1) - 0.1, 3),
                "mode": "PASSIVE" if v else "AUTO",
                "duration_ms": 12.0 + k,
                "busy": 0,
                "log": 1000,
                "checkpointed": 1000,
                "explicit": False,
            }
            for k in range(3)
        ]
        stalled = [x for x in latency if x > 50]
        variants.append(
            {
                "name": name,
                "description": f"variant {name}",
                "commits": len(t_s),
                "seconds": 12.0,
                "commits_per_s": 50.0,
                "commit_latency_ms": _latency(1.2),
                "median_ms": 1.2,
                "stall_threshold_ms": 50.0,
                "stalls": len(stalled),
                "worst_stall_ms": max(stalled, default=0.0),
                "max_wal_bytes": max(wal_bytes),
                "timeline": {"t_s": t_s, "latency_ms": latency},
                "wal": {"t_s": wal_t, "bytes": wal_bytes},
                "checkpoints": checkpoints,
            }
        )
    return {
        "status": "ok",
        "error": None,
        "duration_s": 26.0,
        "params": {
            "rows_per_commit": 10,
            "pad_bytes": 200,
            "rate_per_s": 50,
            "wal_sample_s": 0.25,
            "checkpoint_interval_s": 0.25,
            "truncate_above_bytes": 16 * 1024 * 1024,
            "checkpointer_busy_ms": 100,
            "explicit_busy_ms": 500,
            "duration_s": 12.0,
            "variants": CHECKPOINT_VARIANTS,
        },
        "summary": {
            "worst_stall_ms": max(v["worst_stall_ms"] for v in variants),
            "total_stalls": sum(v["stalls"] for v in variants),
            "max_wal_bytes": max(v["max_wal_bytes"] for v in variants),
            "by_variant": {
                v["name"]: {
                    "stalls": v["stalls"],
                    "worst_stall_ms": v["worst_stall_ms"],
                    "p99_ms": v["commit_latency_ms"]["p99"],
                    "max_ms": v["commit_latency_ms"]["max"],
                    "max_wal_bytes": v["max_wal_bytes"],
                }
                for v in variants
            },
        },
        "variants": variants,
        "resources": _resources(4.0, 1),
    }


def _query() -> dict[str, Any]:
    series = [
        {
            "backlog": b,
            "load_s": round(b / 100_000, 3),
            "claim_ms": _latency(round(0.2 + 0.01 * math.log10(b), 4)),
            "count_ms": _latency(round(0.001 * b**0.9, 4)),
            "count_queued_ms": _latency(round(0.0008 * b**0.9, 4)),
            "claim_samples_ms": [0.2, 0.21, 0.25],
            "claim_plan": ["SEARCH tasks USING INDEX ix_tasks_claim (status=? AND run_at<?)"],
            "count_plan": ["SCAN tasks USING COVERING INDEX ix_tasks_status"],
            "claim_uses_index": True,
            "claims_ms": {
                name: _latency(round(factor * (0.2 + 0.01 * math.log10(b)), 4))
                for name, factor in (
                    ("default", 1.0),
                    ("rare_type", 0.2),
                    ("region_mismatch", 0.15),
                    ("rare_type_region_mismatch", 0.15),
                    ("fifo", 1.4),
                    ("lifo", 1.5),
                    ("weighted_random", 1.6),
                )
            },
        }
        for b in BACKLOGS
    ]
    growth = series[-1]["claim_ms"]["p50"] / series[0]["claim_ms"]["p50"]
    return {
        "status": "ok",
        "error": None,
        "duration_s": 8.0,
        "params": {
            "backlogs": BACKLOGS,
            "claim_repetitions": 3,
            "count_repetitions": 3,
            "pad_bytes": 32,
        },
        "summary": {
            "claim_p50_growth": round(growth, 3),
            "claim_p50_ms_by_backlog": {str(r["backlog"]): r["claim_ms"]["p50"] for r in series},
            "count_p50_ms_by_backlog": {str(r["backlog"]): r["count_ms"]["p50"] for r in series},
            "claim_uses_index": True,
        },
        "series": series,
        "resources": _resources(2.0, 0),
    }


def _metric(
    id_: str, label: str, value: float | None, unit: str, limit: float, op: str, source: str
) -> dict[str, Any]:
    if value is None:
        status = "NOT_MEASURED"
    else:
        ok = value < limit if op == "<" else value > limit
        status = "PASS" if ok else "FAIL"
    return {
        "id": id_,
        "label": label,
        "value": value,
        "unit": unit,
        "limit": limit,
        "op": op,
        "statistic": "synthetic",
        "status": status,
        "source": source,
    }


def metric_list(
    *,
    init_ms: float | None = 12.3,
    connect_ms: float | None = 1.4,
    tx_per_s: float | None = 250.0,
    busy_rate_pct: float | None = 0.0,
    coverage_pct: float | None = 93.5,
) -> list[dict[str, Any]]:
    """The five specification metrics, their status derived from the values."""
    return [
        _metric("init_ms", "Database initialisation", init_ms, "ms", 100, "<", "init"),
        _metric("connect_ms", "Connection overhead", connect_ms, "ms", 10, "<", "connect"),
        _metric("tx_per_s", "Transaction throughput", tx_per_s, "/s", 100, ">", "claim"),
        _metric("busy_rate_pct", "SQLITE_BUSY error rate", busy_rate_pct, "%", 1, "<", "busy"),
        _metric("coverage_pct", "Test coverage", coverage_pct, "%", 80, ">", "coverage"),
    ]


def _worker() -> dict[str, Any]:
    series = [
        {
            "handler": handler,
            "executors": n,
            "tasks": 6000,
            "tasks_per_s": rate * n,
            "bare_tasks_per_s": bare * n,
            "ratio_vs_bare": round(rate / bare, 4),
            "exactly_once": True,
        }
        for handler, rate, bare in (("noop", 3000.0, 2000.0), ("sleep_1ms", 800.0, 600.0))
        for n in (1, 2, 4)
    ]
    return {
        "status": "ok",
        "error": None,
        "duration_s": 40.0,
        "params": {
            "executors": [1, 2, 4],
            "handlers": ["noop", "sleep_1ms"],
            "drain_tasks_noop": 20000,
            "drain_tasks_sleep": 3000,
            "pad_bytes": 200,
            "pickup_s": 5.0,
            "idle_s": 10.0,
            "kill_tasks": 2000,
            "kills": 5,
            "kill_every_s": 0.1,
            "load_fraction": 0.5,
            "pickup_producers": 2,
        },
        "summary": {
            "drain_ratio_4": 1.5,
            "drain_ratio_max": 1.5,
            "drain_tasks_per_s_max": 12000.0,
            "pickup_p50_ms": 2.5,
            "pickup_p99_ms": 9.0,
            "idle_cpu_pct": 0.6,
            "exactly_once_ok": True,
        },
        "series": series,
        "pickup": {
            "executors": 4,
            "capacity_tasks_per_s": 12000.0,
            "target_rate_per_s": 2000.0,
            "achieved_rate_per_s": 1990.0,
            "tasks": 10000,
            "latency_ms": _latency(2.5),
            "latency_hist": {
                "edges_ms": [1.0, 1.2589, 1.5849, 1.9953],
                "counts": [10, 80, 30],
                "n": 120,
            },
        },
        "idle": {
            "executors": 4,
            "seconds": 10.0,
            "engine_cpu_pct": 0.6,
            "executors_cpu_pct": 0.0,
            "total_cpu_pct": 0.6,
        },
        "killed": {"tasks": 2000, "kills": 5, "ok": True},
        "stopped": {
            "tasks": 2000,
            "completed": 500,
            "queued": 1500,
            "queued_with_attempts": 0,
            "ok": True,
        },
        "resources": _resources(2.0, 0),
    }


_BASE: dict[str, Any] = {
    "schema": model.SCHEMA,
    "run_id": "20261129-091500-linux-3f2a1c0",
    "profile": "quick",
    "started_utc": "2026-11-29 09:15:00.000",
    "finished_utc": "2026-11-29 09:19:12.345",
    "duration_s": 252.3,
    "command": ["python", "-m", "bench", "run", "--quick"],
    "environment": {
        "os": "Linux",
        "os_version": "6.1.0",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
        "machine": "x86_64",
        "python": "3.11.7",
        "python_implementation": "CPython",
        "sqlite_version": "3.40.1",
        "cpu": 'Synthetic CPU <fast> & "quoted"',
        "cores_logical": 2,
        "cores_physical": 2,
        "ram_bytes": 25_769_803_776,
        "filesystem": "ext4",
        "workdir": "/tmp/prismq-bench",
        "git_commit": "3f2a1c0deadbeef",
        "git_dirty": False,
        "defender_realtime": None,
        "ci": None,
    },
    "scenarios": {
        "init": _samples_scenario(12.3, "first_ms"),
        "connect": _samples_scenario(1.4, "connect_only_median_ms"),
        "insert": _insert(),
        "claim": _claim(),
        "busy": _busy(),
        "checkpoint": _checkpoint(),
        "query": _query(),
        "worker": _worker(),
        "soak": _soak(),
    },
    "correctness": {
        "ok": True,
        "checks": [
            {"scenario": "claim", "name": "exactly_once", "ok": True, "detail": "8000 of 8000"},
            {"scenario": "busy", "name": "no_lost_tasks", "ok": True, "detail": "0 lost"},
        ],
    },
    "metrics": [],
    "passed": True,
}
_BASE["metrics"] = metric_list(tx_per_s=_BASE["scenarios"]["claim"]["summary"]["min_tx_per_s"])


def make_results() -> dict[str, Any]:
    """A fresh deep copy of the synthetic run."""
    return copy.deepcopy(_BASE)


def make_run(results: dict[str, Any] | None = None) -> model.Run:
    """``results`` (default: ``make_results()``) read through the results model."""
    return model.from_dict(results or make_results())


def write_results(directory: Path, results: dict[str, Any] | None = None) -> Path:
    """Write ``results`` (default: ``make_results()``) as ``directory/results.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps(results or make_results(), indent=2), encoding="utf-8")
    return path
