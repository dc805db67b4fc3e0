"""Run worker processes that start, wait until all are ready, then work at the same moment.

A worker prints ``ready`` once it has opened what it needs, waits for ``go`` on its
standard input, works, prints ``done`` and exits 0. Releasing them together makes the
writes overlap, which is the point of the concurrency tests.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import pytest

CHILD_TIMEOUT_SECONDS = 240


def run_released_together(
    worker_arguments: Sequence[Sequence[str]], env: dict[str, str], location: str
) -> None:
    """Start one ``python <arguments>`` per entry, release them together, fail with the
    stderr of any worker that could not start or did not finish cleanly."""
    children = [
        subprocess.Popen(
            [sys.executable, *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for arguments in worker_arguments
    ]
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                child.wait(CHILD_TIMEOUT_SECONDS)
                pytest.fail(f"worker could not start on {location}:\n{child.stderr.read()}")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        failures = []
        for number, child in enumerate(children):
            out, err = child.communicate(timeout=CHILD_TIMEOUT_SECONDS)
            if child.returncode != 0 or out.strip() != "done":
                failures.append(f"worker {number} exited {child.returncode}:\n{err}")
        assert not failures, "\n".join(failures)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
