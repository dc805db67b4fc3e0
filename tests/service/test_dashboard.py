"""The dashboard rendered by a real headless Chromium against a live service.

Needs Debian's ``chromium`` (``scripts/test`` installs it when run as root); without it
the test is skipped, except under ``CI=true`` where it fails. SQLite only: the page
shows what the HTTP API returns, which the other service tests pin on every backend.
The screenshot is kept in the test's folder, and copied to ``$RLMEMORY_TEST_ARTIFACTS``
when that variable names a folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rlmemory.ops.versions import checkpoint
from rlmemory.store import open_store

httpx = pytest.importorskip("httpx")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(f"{message}; CI=true requires it", pytrace=False)
        pytest.skip(message)
    return found


def headless(browser: str, *arguments: str, cwd: Path) -> str:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={cwd / 'profile'}",
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_dashboard_shows_loops_and_figures_in_a_real_browser(
    tmp_path: Path, start_service: Any
) -> None:
    browser = chromium()
    location = str(tmp_path / "memory.db")
    service = start_service(location)
    actions = [{"id": "sports"}, {"id": "politics"}]
    for loop, count in (("news", 5), ("ads", 3)):
        for number in range(count):
            body = {"contextFeatures": [{"n": number}], "actions": actions, "eventId": f"e{number}"}
            httpx.post(f"{service.url}/loops/{loop}/rank", json=body, timeout=30)
            httpx.post(
                f"{service.url}/loops/{loop}/events/e{number}/reward", json={"value": 0.5},
                timeout=30,
            )  # fmt: skip
    with open_store(location) as store:
        checkpoint(store, "news", "first checkpoint")
    page = f"{service.url}/dashboard"
    dom = headless(browser, "--virtual-time-budget=8000", "--dump-dom", page, cwd=tmp_path)
    sections = dict(re.findall(r'<section class="loop" data-loop="(\w+)">(.*?)</section>', dom))
    assert set(sections) == {"news", "ads"}
    assert re.search(r'data-figure="ranks">5<', sections["news"])
    assert re.search(r'data-figure="rewards">5<', sections["news"])
    assert re.search(r'data-figure="meanReward">0\.500<', sections["news"])
    assert re.search(r'data-figure="ranks">3<', sections["ads"])
    assert "roll back" in sections["news"] and "first checkpoint" in sections["news"]
    assert sections["news"].count("<svg") == 4
    assert "refreshes every" in dom
    screenshot = tmp_path / "dashboard.png"
    headless(browser, "--virtual-time-budget=8000", "--window-size=1280,1400",
             f"--screenshot={screenshot}", page, cwd=tmp_path)  # fmt: skip
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = os.environ.get("RLMEMORY_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(artifacts) / "dashboard.png")
