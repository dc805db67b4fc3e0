"""Child process for the kill tests: back up one store to one path, over and over.

Run as ``python backup_worker.py LOCATION TARGET KIND``. Prints ``ready`` once the
store is open, then ``backup N`` as each backup starts; it runs until killed.
"""

from __future__ import annotations

import sys


def main(location: str, target: str, kind: str) -> None:
    from rlmemory.ops.backup import backup
    from rlmemory.store import open_store

    store = open_store(location)
    print("ready", flush=True)
    number = 0
    while True:
        print(f"backup {number}", flush=True)
        backup(store, target, kind=kind)
        number += 1


if __name__ == "__main__":
    main(*sys.argv[1:4])
