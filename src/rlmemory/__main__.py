"""``python -m rlmemory`` runs the same CLI as the ``rlmemory`` command."""

from rlmemory.cli import main

main()
