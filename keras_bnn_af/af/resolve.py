"""Any AF spec -- catalog name, genome, slug, formula or tree -- as a tree."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from keras_bnn_af.af.catalog import catalog
from keras_bnn_af.af.genomes import from_genome
from keras_bnn_af.af.syntax import SLUG, parse, parse_slug
from keras_bnn_af.af.tree import Binary, Const, Node, Param, Unary, Var

__all__ = ["AFSpec", "resolve"]

_GENOME_TEXT = re.compile(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]")

AFSpec = str | Sequence[int] | Node


def resolve(af: AFSpec) -> Node:
    """Turns a catalog name, slug, formula, genome or tree into a tree.

    Strings are tried as a catalog name, then as a genome written `"[6, 0, 0]"`,
    then as a slug (lower-case words joined by `_`), then as a formula.

    # Raises
        ValueError: for anything else, with the position of the problem for
            malformed formulas and slugs.
    """
    if isinstance(af, Var | Const | Param | Unary | Binary):
        return af
    if isinstance(af, str):
        text = af.strip()
        entries = catalog()
        if text in entries:
            return parse(entries[text].formula)
        if _GENOME_TEXT.fullmatch(text):
            return from_genome(json.loads(text))
        if SLUG.fullmatch(text):
            return parse_slug(text)
        return parse(af)
    if isinstance(af, Sequence | np.ndarray):
        return from_genome(af)
    raise ValueError(
        f"Cannot use {af!r} (type {type(af).__name__}) as an activation function. "
        "Expected a catalog name such as 'sin_x', a formula such as 'x + sin(x)', "
        "a GAAF genome such as [6, 0, 0], or an af tree. Pass one of those."
    )
