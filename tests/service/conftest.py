"""Fixtures for service tests: a real ``rlmemory serve`` on loopback, stopped afterwards."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

#: Longest wait for a started service to answer /health.
START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningService:
    """A service process: its base URL and the process itself."""

    url: str
    process: subprocess.Popen

    def output(self) -> str:
        return self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""


def wait_until_healthy(service: RunningService) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"the service exited early:\n{service.output()}")
        try:
            if httpx.get(service.url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a starting server; not synchronisation between workers
    raise AssertionError(f"the service did not answer within {START_TIMEOUT} s")


@pytest.fixture
def start_service(subprocess_env: dict[str, str]) -> Iterator[Callable[..., RunningService]]:
    """``start_service(location, *extra_args)``: run ``rlmemory serve`` on 127.0.0.1."""
    started: list[RunningService] = []

    def start(location: str, *extra: str) -> RunningService:
        port = free_port()
        command = [sys.executable, "-m", "rlmemory", "serve", "--db", location,
                   "--host", "127.0.0.1", "--port", str(port), *extra]  # fmt: skip
        process = subprocess.Popen(
            command, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        service = RunningService(f"http://127.0.0.1:{port}", process)
        started.append(service)
        wait_until_healthy(service)
        return service

    yield start
    for service in started:
        service.process.terminate()
        try:
            service.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(timeout=30)
