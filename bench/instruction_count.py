"""A fixed amount of one hot-path operation, for counting its CPU instructions under callgrind.

On a machine shared with other busy processes even CPU time moves by 10-20 % between runs;
the number of instructions a piece of work executes does not. Run this twice under valgrind,
with ``count`` N and 0, and divide the difference of the two totals by N::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m bench.instruction_count cc 300
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m bench.instruction_count cc 0

(valgrind prints the total as ``Collected : N``.) ``OPERATION`` is ``enqueue`` (one
autocommit ``enqueue``), ``enqueue_many`` (one batch of 100) or ``cc`` (``claim_one`` then
``complete``). The queue's clock is a counter, one millisecond per call, so two runs do the same
work to the instruction; a warm-up of each operation comes before the counted ones. The WAL
frames the counted operations wrote (``wal_autocheckpoint`` is off) are printed per operation on
stderr: the pages each commit writes. Run from a ``git archive`` copy of each revision to compare
them.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.baseline_sql import payload
from queue_core import QueueDatabase, TaskQueue

OPERATIONS = ("enqueue", "enqueue_many", "cc")
BATCH = 100
PAD_BYTES = 200
WORKER = "instruction-count"
_FRAME_BYTES = 4096 + 24  # a WAL frame: its header and one page
_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def run(folder: Path, operation: str, count: int) -> float:
    """Do ``count`` operations (after one of each unmeasured) on a fresh queue in ``folder``;
    return the WAL frames written per counted operation."""
    path = folder / "queue.db"
    with QueueDatabase(path) as db:
        db.initialize_schema()
    ticks = itertools.count()
    with QueueDatabase(path, pragma_overrides={"wal_autocheckpoint": 0}) as db:
        queue = TaskQueue(db, clock=lambda: _START + timedelta(milliseconds=next(ticks)))
        items = [{"type": "bench", "payload": payload(i, PAD_BYTES)} for i in range(BATCH)]
        for _ in range(count // BATCH + 2 if operation == "cc" else 1):
            queue.enqueue_many(items)
        queue.enqueue("bench", payload(0, PAD_BYTES))
        _claim_complete(queue)
        steps: dict[str, Callable[[], object]] = {
            "enqueue": lambda: queue.enqueue("bench", payload(0, PAD_BYTES)),
            "enqueue_many": lambda: queue.enqueue_many(items),
            "cc": lambda: _claim_complete(queue),
        }
        step = steps[operation]
        wal = Path(f"{path}-wal")
        before = wal.stat().st_size
        for _ in range(count):
            step()
        frames = (wal.stat().st_size - before) / _FRAME_BYTES
    return frames / count if count else 0.0


def _claim_complete(queue: TaskQueue) -> None:
    task = queue.claim_one(WORKER)
    if task is None:
        raise RuntimeError("the claim found no task")
    queue.complete(task.id, WORKER)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.instruction_count OPERATION COUNT``; exit 2 on bad usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    usage = f"usage: python -m bench.instruction_count {{{','.join(OPERATIONS)}}} COUNT"
    if len(args) != 2 or args[0] not in OPERATIONS or not args[1].isdigit():
        print(f"{usage}\npython -m bench.instruction_count: error: bad arguments", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="instruction-count-") as folder:
        frames = run(Path(folder), args[0], int(args[1]))
    print(f"{args[0]} x {args[1]}: {frames:.2f} WAL frames per operation", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
