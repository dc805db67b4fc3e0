"""What the file store's safety checks cost: the link guard per call, type checks per read.

The file store refuses symbolic links and special files in its tree (``files.guard``)
and checks the type of every value it reads (``files.check``, ``NaN`` refused at parse
time). This script times the same calls with the checks on and with them switched off
(by replacing them with no-ops in this process only), interleaved so that machine load
hits both alike, and prints the medians and the machine.

    PYTHONPATH=src python benchmarks/bench_file_checks.py [--rows 100000] [--calls 300]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rlmemory.store.files import FileBackedMemoryDatabase, layout
from rlmemory.store.files import encode as file_encode
from rlmemory.store.files import rows as file_rows
from rlmemory.store.files import tables as file_tables
from rlmemory.store.files import totals as file_totals
from rlmemory.store.files.guard import TreeGuard


@contextlib.contextmanager
def checks_off() -> Iterator[None]:
    """Switch the guard and the type checks off in this process (for comparison only)."""
    saved = (
        TreeGuard.folder,
        file_rows.record_check,
        file_totals.check_record,
        file_tables.check_q_table_document,
        file_encode.check_q_values,
    )
    TreeGuard.folder = lambda self, path: path.is_dir()  # type: ignore[method-assign]
    file_rows.record_check = lambda path: lambda *args: None  # type: ignore[assignment]
    file_totals.check_record = lambda *args: None  # type: ignore[assignment]
    file_tables.check_q_table_document = lambda table, path: table  # type: ignore[assignment]
    file_encode.check_q_values = lambda *args: None  # type: ignore[assignment]
    try:
        yield
    finally:
        (
            TreeGuard.folder,
            file_rows.record_check,
            file_totals.check_record,
            file_tables.check_q_table_document,
            file_encode.check_q_values,
        ) = saved


def median_ms(call: Callable[[int], object], calls: int) -> tuple[float, float]:
    """Median milliseconds per call with the checks on and off, alternating call by call."""
    on: list[float] = []
    off: list[float] = []
    for index in range(calls):
        for bucket, context in ((on, contextlib.nullcontext()), (off, checks_off())):
            with context:
                start = time.perf_counter()
                call(index)
                bucket.append(time.perf_counter() - start)
    return statistics.median(on) * 1e3, statistics.median(off) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows and Q-table states")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per operation")
    parser.add_argument("--workdir", default=None, help="folder for the store")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(dir=args.workdir)) / "store"
    with FileBackedMemoryDatabase(folder) as store:
        store.save_q_table("big", {f"s{i}": {"a": 1.0, "b": 2.0} for i in range(args.rows)})
        history = store._agent_folder("big") / layout.REWARDS_FILE
        index = folder / layout.INDEX_FOLDER / "rewards.jsonl"
        # the lines the store writes (history and id index), without a fsync per row
        with open(history, "w") as rows, open(index, "w") as ids:
            for i in range(1, args.rows + 1):
                rows.write(f'{{"id":{i},"reward":0.5,"reward_components":{{}},"timestamp":1.0}}\n')
                line = f'{{"id":{i},"agent":"{history.parent.name}"}}'
                ids.write(line.ljust(layout.INDEX_LINE_WIDTH - 1) + "\n")
        store.save_q_values("small", {"s": {"a": 1.0}})
        few = max(3, args.calls // 30)
        cases: list[tuple[str, Callable[[int], object], int]] = [
            ("get_q_values, one state", lambda i: store.get_q_values("small", "s"), args.calls),
            (
                "save_q_values, one state",
                lambda i: store.save_q_values("small", {"s": {"a": float(i)}}),
                args.calls,
            ),
            (
                "save_agent_reward (new row, index line)",
                lambda i: store.save_agent_reward("small", 1.0, {}),
                args.calls,
            ),
            ("get_agent_rewards(limit=10)", lambda i: store.get_agent_rewards("big"), args.calls),
            (f"get_q_table, {args.rows:,} states", lambda i: store.get_q_table("big"), few),
            (
                f"iter_agent_decisions-like full read, {args.rows:,} rewards",
                lambda i: file_rows.all_rows(history),
                few,
            ),
        ]
        print(
            f"{platform.node()} {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at start"
        )
        print(f"{'operation':<50} {'checks on':>12} {'checks off':>12} {'cost':>8}")
        for name, call, calls in cases:
            on, off = median_ms(call, calls)
            print(f"{name:<50} {on:>10.3f}ms {off:>10.3f}ms {on - off:>+7.3f}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
