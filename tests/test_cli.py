"""The CLI as a newcomer meets it: every command on the demo's store, and every mistake.

Each mistake must end as one line on stderr with exit status 1 and must create nothing;
each command's output is checked at 80 columns. Runs on SQLite files (the CLI's default
store); the PostgreSQL URL spellings are checked against the real server.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rlmemory.cli import app
from rlmemory.cli.app import installed_version
from rlmemory.demo.run import run_demo
from rlmemory.ops import backup as backups
from rlmemory.ops import export as exports
from rlmemory.store import open_store

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "80", **(env or {})})


def assert_one_line_error(result: Any, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0], lines[0]


def assert_fits_80_columns(text: str) -> None:
    too_wide = [line for line in text.splitlines() if len(line.rstrip()) > 80]
    assert not too_wide, too_wide


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with three demo agents: Q-learning, LinUCB and policy gradient."""
    path = tmp_path_factory.mktemp("demo") / "agent_memory.db"
    with open_store(str(path)) as store:
        asyncio.run(run_demo(store, requests=60, seed=1))
        asyncio.run(run_demo(store, requests=30, seed=1, agent_type="linucb"))
        asyncio.run(run_demo(store, requests=30, seed=1, agent_type="policy_gradient"))
    return path


@pytest.fixture
def db(demo_store: Path, tmp_path: Path) -> str:
    """A private copy of the demo store (commands that write must not disturb others)."""
    copy = tmp_path / "agent_memory.db"
    shutil.copyfile(demo_store, copy)
    return str(copy)


def files_in(folder: Path) -> set[str]:
    return {entry.name for entry in folder.iterdir()}


# ------------------------------------------------------------------ the basics
def test_version_prints_the_installed_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"rlmemory {installed_version()}\n"


def test_stats_table_fits_80_columns_and_json_has_the_counts(db: str) -> None:
    table = invoke("stats", "--db", db)
    assert table.exit_code == 0, table.output
    assert_fits_80_columns(table.stdout)
    for agent in ("demo_q_learning", "demo_linucb", "demo_policy_gradient"):
        assert agent in table.stdout
    rows = json.loads(invoke("stats", "--db", db, "--format", "json").stdout)
    counts = {row["agent"]: row["decisions"] for row in rows}
    assert counts == {"demo_q_learning": 60, "demo_linucb": 30, "demo_policy_gradient": 30}


def test_show_prints_the_q_learning_policy_state_by_state(db: str) -> None:
    result = invoke("show", "demo_q_learning", "--db", db, "--top", "3")
    assert result.exit_code == 0, result.output
    assert_fits_80_columns(result.stdout)
    assert "q learning, 60 decisions" in result.stdout
    assert "Best sub-agent per state (3 of" in result.stdout
    data = json.loads(invoke("show", "demo_q_learning", "--db", db, "--format", "json").stdout)
    assert data["learner"] == "q_learning"
    for state in data["states"]:
        assert state["best_value"] == max(state["values"].values())
        assert state["best_action"] in state["values"]
    assert sum(state["visits"] for state in data["states"]) == 60
    assert sum(action["chosen"] for action in data["actions"]) == 60


def test_show_prints_a_bandit_per_sub_agent(db: str) -> None:
    result = invoke("show", "demo_linucb", "--db", db)
    assert result.exit_code == 0, result.output
    assert "linear bandit, 30 decisions" in result.stdout
    assert "learned from" in result.stdout and "|weights|" in result.stdout
    data = json.loads(invoke("show", "demo_linucb", "--db", db, "--format", "json").stdout)
    assert sum(action["learned_from"] for action in data["actions"]) == 30
    assert all(action["weight_norm"] >= 0 for action in data["actions"])


def test_show_prints_a_policy_gradient_per_sub_agent(db: str) -> None:
    result = invoke("show", "demo_policy_gradient", "--db", db)
    assert result.exit_code == 0, result.output
    assert "policy gradient, 30 decisions" in result.stdout
    data = json.loads(invoke("show", "demo_policy_gradient", "--db", db, "--format", "json").stdout)
    probabilities = [action["mean_probability"] for action in data["actions"]]
    assert sum(probabilities) == pytest.approx(1.0)


def test_versions_rewards_and_evaluate_speak_json(db: str) -> None:
    assert invoke("checkpoint", "demo_q_learning", "--db", db, "-m", "first").exit_code == 0
    listed = json.loads(
        invoke("versions", "demo_q_learning", "--db", db, "--format", "json").stdout
    )
    assert [(row["version"], row["note"]) for row in listed] == [(1, "first")]
    rewards = json.loads(
        invoke("rewards", "demo_q_learning", "--db", db, "--limit", "5", "--format", "json").stdout
    )
    assert len(rewards["rewards"]) == 5
    assert all("reward_components" in row for row in rewards["rewards"])
    assert sum(entry["rewards"] for entry in rewards["per_sub_agent"].values()) == 5
    result = invoke(
        "evaluate", "demo_q_learning", "--db", db, "--bootstrap", "50", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    assert evaluation["n_train"] + evaluation["n_evaluated"] == 60
    assert set(evaluation["estimates"]) == {"IPS", "SNIPS", "DR"}


def test_evaluate_takes_the_agent_as_argument_and_still_as_option(db: str) -> None:
    argument = invoke("evaluate", "demo_q_learning", "--db", db, "--bootstrap", "50")
    option = invoke("evaluate", "--agent", "demo_q_learning", "--db", db, "--bootstrap", "50")
    assert argument.exit_code == option.exit_code == 0, argument.output + option.output
    assert argument.stdout == option.stdout
    assert_fits_80_columns(argument.stdout)


def test_commands_print_no_progress_bar_when_not_on_a_terminal(db: str, tmp_path: Path) -> None:
    archive = tmp_path / "b.tar"
    result = invoke("backup", str(archive), "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("Wrote archive backup")


# ----------------------------------------------------------------- the mistakes
MISTAKES = [
    (("checkpoint", "nosuch"), "no agent 'nosuch'"),
    (("export", "nosuch"), "no agent 'nosuch'"),
    (("versions", "nosuch"), "no agent 'nosuch'"),
    (("diff", "nosuch", "1"), "no agent 'nosuch'"),
    (("rollback", "nosuch", "1"), "no agent 'nosuch'"),
    (("prune", "nosuch", "--max-rows", "1"), "no agent 'nosuch'"),
    (("rewards", "nosuch"), "no agent 'nosuch'"),
    (("evaluate", "nosuch"), "no agent 'nosuch'"),
    (("export-log", "nosuch", "--out", "x.csv"), "no agent 'nosuch'"),
    (("show", "demo_q_lerning"), "did you mean 'demo_q_learning'?"),
    (("diff", "demo_q_learning", "7"), "has no version 7"),
    (("rollback", "demo_q_learning", "9"), "has no version 9"),
    (("correct-reward", "99999", "0.5"), "no reward with id 99999"),
    (("delete-reward", "99999"), "no reward with id 99999"),
    (("delete-interaction", "99999"), "no interaction with id 99999"),
    (("export", "demo_q_learning", "--table", "q"), "table must be one of"),
    (("stats", "--format", "yaml"), "--format must be table or json"),
    (("evaluate",), "give the agent"),
    (("evaluate", "demo_linucb", "--agent", "demo_q_learning"), "two agents given"),
    (("demo", "--agent-type", "sarsa"), "unknown rl_agent_type 'sarsa'"),
    (("demo", "--plot", "no/such/folder/c.png"), "folder no/such/folder does not exist"),
    (("rewards", "demo_q_learning", "--plot", "no/such/r.png"), "folder no/such does not exist"),
    (("keys", "rotate", "--new-key-file", "missing.key"), "missing.key"),
]


@pytest.mark.parametrize(("arguments", "fragment"), MISTAKES, ids=lambda v: " ".join(v))
def test_a_mistake_on_the_demo_store_is_one_line_and_creates_nothing(
    arguments: tuple[str, ...], fragment: str, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = Path(db).parent
    monkeypatch.chdir(folder)
    before = files_in(folder)
    with open_store(db) as store:
        agents = store.list_agents()
    result = invoke(*arguments, "--db", db)
    assert_one_line_error(result, fragment)
    assert files_in(folder) - {"agent_memory.db-wal", "agent_memory.db-shm"} == before - {
        "agent_memory.db-wal",
        "agent_memory.db-shm",
    }
    with open_store(db) as store:
        assert store.list_agents() == agents


READ_COMMANDS = [
    ("stats",),
    ("show", "demo_q_learning"),
    ("rewards", "demo_q_learning"),
    ("versions", "demo_q_learning"),
    ("checkpoint", "demo_q_learning"),
    ("evaluate", "demo_q_learning"),
    ("export", "demo_q_learning"),
    ("backup", "b.tar"),
    ("prune", "--max-rows", "1"),
]


@pytest.mark.parametrize("arguments", READ_COMMANDS, ids=lambda v: " ".join(v))
def test_a_missing_store_is_an_error_with_a_did_you_mean_and_is_not_created(
    arguments: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agent_memory.db").touch()
    result = invoke(*arguments, "--db", "agent_memry.db")
    assert_one_line_error(result, "no store at agent_memry.db; did you mean agent_memory.db?")
    assert files_in(tmp_path) == {"agent_memory.db"}


@pytest.mark.postgres
@pytest.mark.parametrize("arguments", READ_COMMANDS, ids=lambda v: " ".join(v))
def test_a_postgresql_database_without_a_store_is_an_error_and_stays_empty(
    arguments: tuple[str, ...],
    postgres_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlalchemy as sa

    monkeypatch.chdir(tmp_path)
    result = invoke(*arguments, "--db", postgres_database_url)
    assert_one_line_error(result, "holds no rlmemory store (`rlmemory demo --db URL` creates one)")
    engine = sa.create_engine(postgres_database_url)
    try:
        with engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
    finally:
        engine.dispose()
    assert files_in(tmp_path) == set()


def test_an_empty_file_is_no_store_and_stays_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    result = invoke("stats", "--db", str(empty))
    assert_one_line_error(result, "no store at")
    assert empty.stat().st_size == 0


def test_a_missing_store_folder_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    folder = tmp_path / "nofolder"
    result = invoke("stats", "--db", f"files://{folder}")
    assert_one_line_error(result, f"no store folder {folder}")
    assert not folder.exists()


def test_missing_backups_are_one_line_errors_and_restore_creates_no_target(
    tmp_path: Path,
) -> None:
    assert_one_line_error(invoke("verify", str(tmp_path / "missing.tar")), "missing.tar")
    target = tmp_path / "r.db"
    result = invoke("restore", str(tmp_path / "missing.tar"), "--db", str(target))
    assert_one_line_error(result, "does not exist")
    assert files_in(tmp_path) == set()


@pytest.mark.parametrize("target_kind", ["sqlite", "files"])
def test_a_failed_restore_leaves_no_target_behind(
    target_kind: str, db: str, tmp_path: Path
) -> None:
    archive = tmp_path / "good.tar"
    assert invoke("backup", str(archive), "--db", db).exit_code == 0
    damaged = tmp_path / "damaged.tar"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    target = tmp_path / ("new.db" if target_kind == "sqlite" else "new-folder")
    location = str(target) if target_kind == "sqlite" else f"files://{target}"
    before = files_in(tmp_path)
    result = invoke("restore", str(damaged), "--db", location)
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert files_in(tmp_path) == before
    restored = invoke("restore", str(archive), "--db", location)
    assert restored.exit_code == 0, restored.output
    assert target.exists()


def test_a_misspelled_url_scheme_suggests_the_right_one(tmp_path: Path) -> None:
    result = invoke("stats", "--db", "postgresq://user@127.0.0.1/db")
    assert_one_line_error(result, "unsupported database URL scheme 'postgresq'; did you mean")


def test_a_missing_optional_package_names_the_extra(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import pyarrow` fail as it does where it is not installed.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = tmp_path / "r.parquet"
    result = invoke(
        "export", "demo_q_learning", "--format", "parquet", "--out", str(out), "--db", db
    )
    assert_one_line_error(result, "pip install 'rlmemory[export]'")
    assert not out.exists()


def test_a_postgresql_url_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    result = invoke("stats", "--db", "postgresql+psycopg://user:pw@127.0.0.1:1/db")
    assert_one_line_error(result, "psycopg is not installed; install it with: pip install")
    assert "rlmemory[postgres]" in result.stderr


def test_an_unreachable_server_is_one_line() -> None:
    # Port 1 on the loopback refuses at once; nothing leaves the machine.
    result = invoke("stats", "--db", "postgresql+psycopg://user:pw@127.0.0.1:1/db")
    assert_one_line_error(result, "127.0.0.1")
    assert "***" in result.stderr and "pw" not in result.stderr


@pytest.mark.postgres
def test_postgres_scheme_is_accepted_as_postgresql(postgres_store_url: str) -> None:
    """PostgreSQL only: the URL spelling is what is tested."""
    with open_store(postgres_store_url) as store:
        store.save_agent_reward("router", 0.5, {"source": "test"})
    plain = postgres_store_url.replace("postgresql+psycopg://", "postgres://", 1)
    assert plain.startswith("postgres://")
    result = invoke("stats", "--db", plain, "--format", "json")
    assert result.exit_code == 0, result.output
    assert [row["agent"] for row in json.loads(result.stdout)] == ["router"]


def test_an_unexpected_error_is_one_line_naming_it_as_a_bug() -> None:
    from rlmemory.cli.app import _OneLineErrorsGroup

    broken = typer.Typer(cls=_OneLineErrorsGroup)

    @broken.command()
    def explode() -> None:
        raise RuntimeError("boom")

    @broken.command()
    def other() -> None:
        """A second command, so that Typer keeps the group."""

    result = runner.invoke(broken, ["explode"])
    assert_one_line_error(result, "unexpected RuntimeError: boom (this is a bug in rlmemory")


# ------------------------------------------------------- progress from the library
def test_long_operations_report_progress_to_their_callback(db: str, tmp_path: Path) -> None:
    calls: dict[str, list[tuple[int, int]]] = {}

    def recorder(name: str) -> Any:
        calls[name] = []
        return lambda done, total: calls[name].append((done, total))

    archive = tmp_path / "b.tar"
    with open_store(db) as store:
        backups.backup(store, archive, progress=recorder("backup"))
        exports.export_agent(
            store,
            "demo_q_learning",
            "rewards",
            "csv",
            tmp_path / "r.csv",
            progress=recorder("export"),
        )
    backups.verify(archive, progress=recorder("verify"))
    with open_store(str(tmp_path / "restored.db")) as target:
        backups.restore(archive, target, progress=recorder("restore"))
    for name, seen in calls.items():
        assert seen, name
        done, total = seen[-1]
        assert done == total > 0, (name, seen)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen), (name, seen)
    assert calls["export"][-1] == (60, 60)


def test_a_progress_bar_is_drawn_on_a_terminal(
    db: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Linux pseudo-terminal; the backend does not matter for what is drawn."""
    import os
    import pty
    import subprocess

    main, secondary = pty.openpty()
    command = [sys.executable, "-m", "rlmemory", "backup", str(tmp_path / "b.tar"), "--db", db]
    env = {**subprocess_env, "COLUMNS": "80", "TERM": "xterm"}
    process = subprocess.Popen(command, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert process.wait(timeout=60) == 0, seen
    assert b"backing up" in seen
    assert b"Wrote archive backup" in seen


def test_prune_fits_80_columns_and_names_the_saved_versions(db: str) -> None:
    result = invoke("prune", "--max-rows", "10", "--db", db)
    assert result.exit_code == 0, result.output
    assert_fits_80_columns(result.stdout)
    assert "demo_policy_gradient" in result.stdout  # the longest name, not folded
    assert "State before pruning saved: demo_linucb as version 1" in result.stdout
    with open_store(db) as store:
        assert store.count_agent_decisions("demo_q_learning") == 10


def test_names_with_brackets_are_printed_as_they_are(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    with open_store(db) as store:
        store.save_q_values("[bold]router[/bold]", {"[red]state": {"[x]": 0.5}})
        store.save_agent_decision("[bold]router[/bold]", "[red]state", "[x]", {}, {"value": 0.5})
    stats = invoke("stats", "--db", db)
    assert "[bold]router[/bold]" in stats.stdout
    shown = invoke("show", "[bold]router[/bold]", "--db", db)
    assert shown.exit_code == 0, shown.output
    assert "[bold]router[/bold]: q learning, 1 decisions" in shown.stdout
    assert "[red]state" in shown.stdout and "[x]" in shown.stdout
    missing = invoke("show", "[bold]rooter[/bold]", "--db", db)
    assert_one_line_error(missing, "did you mean '[bold]router[/bold]'?")
