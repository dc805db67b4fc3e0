"""The examples run as users run them: as scripts, in a fresh process, offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SOURCE = Path(__file__).resolve().parent.parent / "src"


def run_example(name: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_seed_usage_example_runs_offline_and_resumes_on_a_second_run(tmp_path: Path) -> None:
    first = run_example("seed_usage.py", tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Stored decisions before this run: 0" in first.stdout
    assert re.search(
        r"Learning result: \{'status': 'success', 'interactions_processed': 1", first.stdout
    )
    assert (tmp_path / "agent_memory.db").exists()

    second = run_example("seed_usage.py", tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Stored decisions before this run: 19" in second.stdout
    assert "decisions stored: 38" in second.stdout


def test_seed_usage_example_takes_the_database_path(tmp_path: Path) -> None:
    result = run_example("seed_usage.py", tmp_path, str(tmp_path / "elsewhere.db"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "agent_memory.db").exists()


def test_langgraph_router_example_runs_offline_and_learns_across_runs(tmp_path: Path) -> None:
    first = run_example("langgraph_router.py", tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Stored decisions before this run: 0" in first.stdout
    right = int(re.search(r"Routed right: (\d+)/30", first.stdout).group(1))
    assert right >= 20  # a router that did not learn is right about half the time
    assert (tmp_path / "langgraph_router.db").exists()
    second = run_example("langgraph_router.py", tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Stored decisions before this run: 30" in second.stdout
    assert "decisions stored: 60" in second.stdout


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_programs() -> list[str]:
    """The README's Python blocks that are whole programs (they import what they use);
    the one-line fragments showing a constructor are not."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    return [block for block in blocks if re.search(r"^(from|import) ", block, re.MULTILINE)]


def test_readme_python_programs_run_as_written(tmp_path: Path) -> None:
    programs = readme_programs()
    assert programs, "the README lost its runnable Python example"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
    for number, program in enumerate(programs):
        script = tmp_path / f"readme_{number}.py"
        script.write_text(program, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"README program {number} failed:\n{result.stderr}"
        assert "'status': 'success'" in result.stdout
    assert (tmp_path / "agent_memory.db").exists()
