"""docs/cli.md cannot drift from the program (sqlite-utils' test_commands_are_documented)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rlmemory.cli.reference import MARKER, commands, updated_document

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_cli_reference_is_generated_from_the_current_app() -> None:
    current = CLI_DOC.read_text(encoding="utf-8")
    assert MARKER in current
    assert updated_document(current) == current, "run: python scripts/gen_cli_docs.py"


@pytest.mark.parametrize(("path", "command"), list(commands()), ids=lambda v: str(v))
def test_every_command_and_option_is_documented(path: str, command: object) -> None:
    reference = CLI_DOC.read_text(encoding="utf-8").split(MARKER, 1)[1]
    section = reference.split(f"## `{path}`\n", 1)
    assert len(section) == 2, f"{path} has no section in docs/cli.md"
    body = section[1].split("\n## ", 1)[0]
    for parameter in command.params:  # type: ignore[attr-defined]
        if parameter.hidden if hasattr(parameter, "hidden") else False:
            continue
        names = parameter.opts if parameter.param_type_name == "option" else [parameter.name]
        for name in names:
            shown = name if name.startswith("-") else name.upper()
            assert re.search(rf"`{re.escape(shown)}`", body), f"{path}: {shown} undocumented"
    assert command.help and command.help.strip().splitlines()[0] in body  # type: ignore[attr-defined]
