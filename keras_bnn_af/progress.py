"""Progress of long steps: a bar on a terminal, a few plain lines otherwise.

```python
for sample in track(samples, "verifying on LCE's interpreter", enabled=progress):
    ...
```

Library functions take `progress=False` and stay silent unless asked; the
`keras-bnn-af` command asks. On a terminal `track` draws a tqdm bar (erased
when the step ends); when the stream is not a terminal (a log file, CI, a
notebook) it prints plain `description: i/n` lines instead: the last one
always, and one per quarter of the way for steps that run long enough to
need them. Progress goes to stderr, so stdout keeps only the results.
"""

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

__all__ = ["LINE_INTERVAL", "track"]

Item = TypeVar("Item")

#: Seconds since the last plain line before another intermediate line is printed.
LINE_INTERVAL = 5.0


def track(
    items: Iterable[Item],
    description: str,
    *,
    total: int | None = None,
    enabled: bool = True,
    stream: TextIO | None = None,
) -> Iterable[Item]:
    """`items`, reporting progress to `stream` (stderr) while they are consumed.

    # Arguments
        items: what to iterate over.
        description: what the step does, e.g. `"choosing LCE kernels"`.
        total: the number of items; `len(items)` when None.
        enabled: False returns `items` unchanged and prints nothing.
        stream: where to report; `sys.stderr` (at call time) when None.
    """
    if not enabled:
        return items
    stream = stream or sys.stderr
    if total is None:
        total = len(items) if hasattr(items, "__len__") else None
    if _is_terminal(stream):
        return _bar(items, description, total, stream)
    return _lines(items, description, total, stream)


def _bar(items, description, total, stream) -> Iterator:
    from tqdm import tqdm

    yield from tqdm(
        items, desc=description, total=total, file=stream, leave=False, ncols=80
    )


def _lines(items, description, total, stream) -> Iterator:
    start = last = time.monotonic()
    marks = {-(-total * quarter // 4) for quarter in (1, 2, 3)} if total else set()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if done in marks and now - last >= LINE_INTERVAL:
            _print(stream, description, done, total, now - start)
            last = now
    _print(stream, description, done, total, time.monotonic() - start)


def _print(stream, description, done, total, seconds) -> None:
    count = f"{done:,}/{total:,}" if total else f"{done:,}"
    print(f"{description}: {count} ({seconds:.0f} s)", file=stream, flush=True)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
