"""CLI commands for operations: versions, rollback, pruning, keys, backup, restore, export.

Each command parses its options, calls one function of :mod:`rlmemory.ops` and prints
the result with Rich; errors become one line on stderr and exit code 1.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import typer

from rlmemory.cli.app import app
from rlmemory.cli.common import (
    AgentArgument,
    DbOption,
    FormatOption,
    check_output_format,
    check_store_exists,
    console,
    format_time,
    new_table,
    opened_store,
    print_json,
    progress_bar,
    remove_new_store,
    reported_errors,
    require_agent,
    resolve_db,
    store_exists,
)
from rlmemory.ops import backup as backups
from rlmemory.ops import export as exports
from rlmemory.ops import history, retention, versions
from rlmemory.ops.crypto import new_key_file

__all__ = [
    "backup_command",
    "checkpoint_command",
    "correct_reward_command",
    "delete_interaction_command",
    "delete_reward_command",
    "diff_command",
    "export_command",
    "keys_new",
    "keys_rotate",
    "prune_command",
    "restore_command",
    "rollback_command",
    "verify_command",
    "versions_command",
]

PolicyFileOption = typer.Option(
    None,
    "--policy",
    help='Policy file, or inline JSON: {"default": {...}, "agents": {"name": {...}}} or one '
    "policy for all.",
)
KeyFileArgument = typer.Argument(..., help="Key file to create (mode 0600).")
NewKeyFileOption = typer.Option(..., "--new-key-file", help="Key file of the new key.")
OldKeyFileOption = typer.Option(
    None,
    "--old-key-file",
    help="Key file of the current key (default: $RLMEMORY_KEY or $RLMEMORY_KEY_FILE).",
)
BackupPathArgument = typer.Argument(..., help="Backup file (.db: SQLite copy; else an archive).")
RestorePathArgument = typer.Argument(..., help="Backup file to restore.")
VerifyPathArgument = typer.Argument(..., help="Backup file to check.")
ExportOutOption = typer.Option(
    None, "--out", "-o", help="Output file (default AGENT-TABLE.FORMAT)."
)

keys_app = typer.Typer(help="Create encryption keys and re-encrypt a store with a new key.")
app.add_typer(keys_app, name="keys")


def _size(size: int) -> str:
    scaled = float(size)
    for unit in ("B", "KiB", "MiB"):
        if scaled < 1024:
            return f"{scaled:.0f} {unit}" if unit == "B" else f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} GiB"


# ------------------------------------------------------------------ versions
@app.command("versions")
def versions_command(
    agent: str = AgentArgument, db: str | None = DbOption, output: str = FormatOption
) -> None:
    """List the saved versions of AGENT's learned state."""
    check_output_format(output)
    with opened_store(db) as store:
        require_agent(store, agent)
        listed = versions.list_versions(store, agent)
    if output == "json":
        print_json([dataclasses.asdict(info) for info in listed])
        return
    if not listed:
        console.print(f"No versions of {agent} yet (`rlmemory checkpoint {agent}`).")
        return
    table = new_table(
        f"Versions of {agent}", ("version", "created", "size", "note"), right=("version", "size")
    )
    for info in listed:
        table.add_row(str(info.version), format_time(info.created), _size(info.size), info.note)
    console.print(table)


@app.command("checkpoint")
def checkpoint_command(
    agent: str = AgentArgument,
    note: str = typer.Option("", "--note", "-m", help="What this version is."),
    db: str | None = DbOption,
) -> None:
    """Save AGENT's current learned state as a new version."""
    with opened_store(db) as store:
        require_agent(store, agent)
        number = versions.checkpoint(store, agent, note)
    console.print(f"Saved version {number} of {agent}.")


def _parse_version(text: str) -> int | None:
    if text.lower() == "current":
        return None
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"a version is a positive number or 'current', not {text!r}") from None
    if number <= 0:
        raise ValueError(f"a version is a positive number or 'current', not {text!r}")
    return number


@app.command("diff")
def diff_command(
    agent: str = AgentArgument,
    first: str = typer.Argument(..., help="Older version number."),
    second: str = typer.Argument("current", help="Newer version number, or 'current'."),
    top: int = typer.Option(20, "--top", min=1, help="How many of the biggest changes to list."),
    db: str | None = DbOption,
) -> None:
    """Show which states and actions changed between two versions, and by how much."""
    with reported_errors():
        older = _parse_version(first)
        if older is None:
            raise ValueError("the first version must be a number")
        newer = _parse_version(second)
    with opened_store(db) as store:
        require_agent(store, agent)
        result = versions.diff(store, agent, older, newer)
    label = f"{agent}: version {older} -> {second}"
    if result.is_empty:
        console.print(f"{label}: no differences.")
        return
    summary = result.summary()
    console.print(
        f"{label}: {summary['q_values_changed']} Q-values in {summary['q_states_changed']} "
        f"states (max |change| {summary['q_max_abs_change']:.4g}), "
        f"{summary['policy_params_changed']} policy parameters, "
        f"{summary['arrays_changed']} arrays (max |change| {summary['arrays_max_abs_change']:.4g})"
    )
    if result.q_changes:
        table = new_table(
            "Q-values, biggest changes first",
            ("state", "action", "before", "after", "change"),
            right=("before", "after", "change"),
        )
        for change in result.q_changes[:top]:
            table.add_row(
                change.state,
                change.action,
                "-" if change.before is None else f"{change.before:.4g}",
                "-" if change.after is None else f"{change.after:.4g}",
                f"{change.delta:+.4g}",
            )
        console.print(table)
    others: list[Any] = [*result.policy_changes, *result.array_changes]
    if others:
        table = new_table(
            "Parameters and arrays", ("key", "status", "entries changed", "max |change|")
        )
        for change in others[:top]:
            table.add_row(
                change.key,
                change.status,
                "-" if change.changed_entries is None else str(change.changed_entries),
                "-" if change.max_abs_change is None else f"{change.max_abs_change:.4g}",
            )
        console.print(table)


@app.command("rollback")
def rollback_command(
    agent: str = AgentArgument,
    version: int = typer.Argument(..., min=1, help="Version to go back to."),
    db: str | None = DbOption,
) -> None:
    """Restore the learned state of a version (as a new version; nothing is erased)."""
    with opened_store(db) as store:
        require_agent(store, agent)
        outcome = versions.rollback(store, agent, version)
    console.print(
        f"Rolled {agent} back to version {outcome.restored}: the previous state is version "
        f"{outcome.saved_before}, the restored state version {outcome.new_version}. "
        "Restart running coordinators (or call reload()) to use it."
    )


# --------------------------------------------------------- correcting history
@app.command("correct-reward")
def correct_reward_command(
    reward_id: int = typer.Argument(..., help="Id of the reward row."),
    value: float = typer.Argument(..., help="The correct reward."),
    db: str | None = DbOption,
) -> None:
    """Correct a recorded reward (and the decision that learned it)."""
    with opened_store(db) as store:
        before = history.correct_reward(store, reward_id, value)
    console.print(
        f"Reward {reward_id} of {before['agent_name']}: {before['reward']:g} -> {value:g}. "
        "Relearn from a version before it (rlmemory.ops.history.relearn) to update the learner."
    )


@app.command("delete-reward")
def delete_reward_command(
    reward_id: int = typer.Argument(..., help="Id of the reward row."),
    db: str | None = DbOption,
) -> None:
    """Delete a recorded reward; a decision that learned it stops counting it."""
    with opened_store(db) as store:
        before = history.delete_reward(store, reward_id)
    console.print(f"Deleted reward {reward_id} ({before['reward']:g}) of {before['agent_name']}.")


@app.command("delete-interaction")
def delete_interaction_command(
    interaction_id: int = typer.Argument(..., help="Id of the interaction row."),
    db: str | None = DbOption,
) -> None:
    """Delete a recorded interaction (request, response, feedback)."""
    with opened_store(db) as store:
        before = history.delete_interaction(store, interaction_id)
    console.print(f"Deleted interaction {interaction_id} of {before['agent_name']}.")


# ------------------------------------------------------------------- pruning
def _policy_from_options(
    policy_file: Path | None,
    max_age_days: float | None,
    max_rows: int | None,
    keep_versions: int | None,
    versions_max_age_days: float | None,
    q_unvisited_days: float | None,
    q_keep_top: int | None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if policy_file is not None:
        text = str(policy_file)
        try:
            if not text.lstrip().startswith("{"):  # a file name, not inline JSON
                text = policy_file.read_text(encoding="utf-8")
            loaded = json.loads(text)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read policy {policy_file}: {error}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"policy {policy_file} must be a JSON object")
        spec = loaded
        for name in ("", *spec.get("agents", {})):  # every agent's rules, before the store
            retention.RetentionPolicy.from_mapping(retention.policy_spec_for(spec, name))
    overrides = {
        "max_age_days": max_age_days,
        "max_rows": max_rows,
        "q_unvisited_days": q_unvisited_days,
        "q_keep_most_visited": q_keep_top,
    }
    version_rule = {"max_rows": keep_versions, "max_age_days": versions_max_age_days}
    return {
        "overrides": {key: value for key, value in overrides.items() if value is not None},
        "versions": {key: value for key, value in version_rule.items() if value is not None},
        "file": spec,
    }


def _policy_for(agent: str, options: dict[str, Any]) -> retention.RetentionPolicy:
    base = retention.policy_spec_for(options["file"], agent)
    base.update(options["overrides"])
    if options["versions"]:
        base["versions"] = {**base.get("versions", {}), **options["versions"]}
    return retention.RetentionPolicy.from_mapping(base)


@app.command("prune")
def prune_command(
    agent: str | None = typer.Argument(
        None, help="Agent name (default: every agent).", show_default=False
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would go."),
    max_age_days: float | None = typer.Option(
        None, "--max-age-days", help="Drop rewards, interactions, decisions older than this."
    ),
    max_rows: int | None = typer.Option(
        None, "--max-rows", min=0, help="Keep at most this many newest rows per history table."
    ),
    keep_versions: int | None = typer.Option(
        None, "--keep-versions", min=1, help="Keep at most this many newest versions."
    ),
    versions_max_age_days: float | None = typer.Option(
        None, "--versions-max-age-days", help="Drop versions older than this (newest kept)."
    ),
    q_unvisited_days: float | None = typer.Option(
        None, "--q-unvisited-days", help="Drop Q-table states not updated for this long."
    ),
    q_keep_top: int | None = typer.Option(
        None, "--q-keep-top", min=0, help="Keep only the N most visited Q-table states."
    ),
    policy_file: Path | None = PolicyFileOption,
    db: str | None = DbOption,
) -> None:
    """Apply a retention policy; a version is saved before anything is removed."""
    with reported_errors():
        options = _policy_from_options(
            policy_file,
            max_age_days,
            max_rows,
            keep_versions,
            versions_max_age_days,
            q_unvisited_days,
            q_keep_top,
        )
    with opened_store(db) as store:
        agents = [require_agent(store, agent)] if agent else store.list_agents()
        reports = []
        with progress_bar("pruning") as advance:
            for done, name in enumerate(agents):
                advance(done, len(agents))
                policy = _policy_for(name, options)
                if policy.is_empty:
                    continue
                reports.append(retention.prune(store, name, policy, dry_run=dry_run))
    if not reports:
        console.print("Nothing to do: no retention rule applies (see `rlmemory prune --help`).")
        return
    counted = ("rewards", "interactions", "decisions", "versions", "Q states")
    table = new_table(
        "Would remove (dry run)" if dry_run else "Removed", ("agent", *counted), right=counted
    )
    for report in reports:
        counts = report.counts()
        table.add_row(
            report.agent_name,
            *(
                str(counts[key])
                for key in ("rewards", "interactions", "decisions", "versions", "q_states")
            ),
        )
    console.print(table)
    saved = [f"{r.agent_name} as version {r.saved_version}" for r in reports if r.saved_version]
    if saved:
        console.print(f"State before pruning saved: {', '.join(saved)}.")


# ---------------------------------------------------------------------- keys
@keys_app.command("new")
def keys_new(path: Path = KeyFileArgument) -> None:
    """Create a key file holding a new random AES-256 key."""
    with reported_errors():
        try:
            created = new_key_file(path)
        except (FileExistsError, OSError) as error:
            raise ValueError(str(error)) from None
    console.print(
        f"Created {created} (mode 0600). Use it with RLMEMORY_KEY_FILE={created}; "
        "keep a copy somewhere safe: without it encrypted data cannot be read."
    )


@keys_app.command("rotate")
def keys_rotate(
    new_key_file: Path = NewKeyFileOption,
    old_key_file: Path | None = OldKeyFileOption,
    db: str | None = DbOption,
) -> None:
    """Re-encrypt every encrypted value of the store with a new key (and encrypt plain ones)."""
    from rlmemory.ops.rotation import rotate_key

    with reported_errors(), progress_bar("re-encrypting") as advance:
        check_store_exists(resolve_db(db))
        report = rotate_key(
            resolve_db(db), new_key=new_key_file, old_key=old_key_file, progress=advance
        )
    console.print(
        f"Re-encrypted {report.values} values in {report.rows} rows with key {report.new_key_id}."
    )


# ------------------------------------------------------------- backup/restore
@app.command("backup")
def backup_command(
    path: Path = BackupPathArgument,
    kind: str = typer.Option("auto", "--kind", help="auto, sqlite or archive."),
    db: str | None = DbOption,
) -> None:
    """Take a consistent backup while writers keep running."""
    with opened_store(db) as store, progress_bar("backing up") as advance:
        report = backups.backup(store, path, kind=kind, progress=advance)
    rows = sum(report.counts.values())
    console.print(
        f"Wrote {report.kind} backup {report.path} ({rows} rows, {report.seconds:.2f} s)."
    )


@app.command("restore")
def restore_command(
    path: Path = RestorePathArgument,
    replace: bool = typer.Option(
        False, "--replace", help="Replace the data of a non-empty store (versions are kept)."
    ),
    db: str | None = DbOption,
) -> None:
    """Restore a backup into the store (any backend: SQLite, PostgreSQL, files).

    A SQLite file or store folder that did not exist is created, and removed again
    when the restore fails.
    """
    location = resolve_db(db)
    with reported_errors():
        backups.backup_kind(path)  # a missing backup must not create an empty store first
        new_target = not store_exists(location)
        try:
            with opened_store(location, create=True) as store, progress_bar("restoring") as advance:
                report = backups.restore(path, store, replace=replace, progress=advance)
        except BaseException:
            if new_target:
                remove_new_store(location)
            raise
    rows = sum(report.counts.values())
    console.print(f"Restored {rows} rows from {report.source} into {report.target}.")
    for agent, version in report.saved_versions.items():
        console.print(f"  {agent}: state before the restore saved as version {version}")


@app.command("verify")
def verify_command(path: Path = VerifyPathArgument) -> None:
    """Check a backup's checksums, row counts and integrity without restoring it."""
    with reported_errors(), progress_bar("verifying") as advance:
        report = backups.verify(path, progress=advance)
    table = new_table(f"{report.kind} backup {report.path}", ("table", "rows"), right=("rows",))
    for name, count in sorted(report.counts.items()):
        table.add_row(name, str(count))
    console.print(table)
    if report.ok:
        console.print(
            f"[green]OK[/green]: schema version {report.schema_version}, checksums match.",
            markup=True,
        )
        return
    with reported_errors():
        raise ValueError(f"{report.path} is damaged: {'; '.join(report.problems)}")


# -------------------------------------------------------------------- export
@app.command("export")
def export_command(
    agent: str = AgentArgument,
    table: str = typer.Option("rewards", "--table", help="rewards, interactions or decisions."),
    file_format: str = typer.Option("csv", "--format", help="csv, jsonl or parquet."),
    out: Path | None = ExportOutOption,
    db: str | None = DbOption,
) -> None:
    """Export AGENT's rewards, interactions or decisions for analysis."""
    with reported_errors():
        exports.check_table(table)
        exports.check_format(file_format)
    target = out or Path(f"{agent}-{table}.{file_format}")
    with opened_store(db) as store, progress_bar("exporting") as advance:
        require_agent(store, agent)
        count = exports.export_agent(store, agent, table, file_format, target, progress=advance)
    console.print(f"Wrote {count} {table} of {agent} to {target}.")
