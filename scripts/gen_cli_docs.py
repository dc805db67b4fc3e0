#!/usr/bin/env python3
"""Regenerate the command reference at the end of docs/cli.md from the rlmemory app.

Usage: python scripts/gen_cli_docs.py [--check]
With --check, change nothing and exit 1 when docs/cli.md is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rlmemory.cli.reference import updated_document, write_reference  # noqa: E402

DOCUMENT = ROOT / "docs" / "cli.md"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        current = DOCUMENT.read_text(encoding="utf-8")
        if updated_document(current) != current:
            print(f"{DOCUMENT} is out of date: run python scripts/gen_cli_docs.py")
            return 1
        return 0
    changed = write_reference(DOCUMENT)
    print(f"{DOCUMENT} {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
