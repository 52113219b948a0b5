"""Pieces of the house error message: what happened / what was expected / the fix."""

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(value: object, choices: Iterable[str], *, inline: bool = False) -> str:
    """`" Did you mean 'x'?"` for the closest choice, or `""` when none is close.

    With `inline`, the hint reads `" (did you mean 'x'?)"`, for the middle of a
    sentence.
    """
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    if not close:
        return ""
    return (
        f" (did you mean {close[0]!r}?)" if inline else f" Did you mean {close[0]!r}?"
    )
