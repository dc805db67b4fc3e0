"""Progress reporting for long operations: an optional callback ``progress(done, total)``.

Long library functions (backup, restore, verify, export, relearn, key rotation) take
``progress=None`` and call it as work advances; ``total`` is 0 while unknown. The CLI
passes a callback that draws a progress bar; library users may pass anything.

>>> seen = []
>>> list(counted("abc", lambda done, total: seen.append((done, total)), total=3, every=2))
['a', 'b', 'c']
>>> seen
[(0, 3), (2, 3), (3, 3)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["ProgressCallback", "counted", "report"]

#: ``progress(done, total)``; ``total`` is 0 when it is not known.
ProgressCallback = Callable[[int, int], None]

_Item = TypeVar("_Item")


def report(progress: ProgressCallback | None, done: int, total: int) -> None:
    """Call ``progress(done, total)`` when a callback was given."""
    if progress is not None:
        progress(done, total)


def counted(
    items: Iterable[_Item],
    progress: ProgressCallback | None,
    *,
    total: int = 0,
    every: int = 500,
) -> Iterator[_Item]:
    """Yield ``items``, reporting how many went by every ``every`` items and at the end."""
    if progress is None:
        yield from items
        return
    done = 0
    progress(0, total)
    for item in items:
        yield item
        done += 1
        if done % every == 0:
            progress(done, total)
    progress(done, max(total, done))
