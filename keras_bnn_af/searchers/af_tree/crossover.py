"""Crossover of AF trees, and found trees added to the AF catalog.

See `keras_bnn_af.searchers.af_tree` for the rules every operator keeps.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from keras_bnn_af import af
from keras_bnn_af.af.tree import Node, replace_at, sites, subtree_at
from keras_bnn_af.searchers.af_tree.space import (
    MutationError,
    TreeSpace,
    _as_tree,
    _check_rng,
    _fits,
    _merge_nested_edges,
    _problem,
    _shuffled,
    _space,
    canonical,
)

__all__ = ["crossover", "to_catalog_entry"]


# --- crossover -----------------------------------------------------------------------


def crossover(
    a: str | Node,
    b: str | Node,
    rng: random.Random,
    *,
    space: TreeSpace | None = None,
) -> tuple[Node, Node]:
    """Swaps a random subtree of `a` with a random subtree of `b`.

    Pairs of sites (any subtree, but not both roots) are tried in random order
    until both children are valid, within the limits (or no larger than the
    larger parent), and neither equals a parent. A `scale` landing directly inside
    a `scale` merges into it.

    # Arguments
        a, b: af trees or formulas.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        `(child_a, child_b)`: `a` with `b`'s subtree in place, and the converse.

    # Raises
        MutationError: if no swap gives two valid, new children.
    """
    _check_rng(rng)
    a, b, space = _as_tree(a), _as_tree(b), _space(space)
    pairs = [
        (site_a, site_b)
        for site_a, _, _ in sites(a)
        for site_b, _, _ in sites(b)
        if site_a or site_b
    ]

    def children() -> Iterator[tuple[Node, Node]]:
        for site_a, site_b in _shuffled(rng, pairs):
            yield (
                _merge_nested_edges(replace_at(a, site_a, subtree_at(b, site_b))),
                _merge_nested_edges(replace_at(b, site_b, subtree_at(a, site_a))),
            )

    def acceptable(child: Node) -> bool:
        return (
            child not in (a, b)
            and _fits(child, space, (a, b))
            and _problem(child, space.require_sign_change) is None
        )

    tried = 0
    for child_a, child_b in children():
        tried += 1
        if acceptable(child_a) and acceptable(child_b):
            return child_a, child_b
    reason = (
        f"crossover: none of {tried} subtree swaps of {af.to_formula(a)!r} and "
        f"{af.to_formula(b)!r} gives two valid new trees within {space.limits()}"
    )
    raise MutationError(
        f"{reason}. Pick other parents, or loosen the TreeSpace limits.", reason
    )


# --- the catalog ---------------------------------------------------------------------


def to_catalog_entry(
    name: str,
    formula: str | Node,
    provenance: str,
    score: float | None = None,
    command: str | None = None,
) -> af.CatalogEntry:
    """Adds a found tree to the in-memory AF catalog (`af.add_entry`), so GAAF can
    use it by name.

    # Arguments
        name: lower-case identifier, e.g. `"pangaea_007"`.
        formula: the tree or its formula.
        provenance: where it comes from, e.g. `"PANGAEA search, seed 3, gen 12"`.
        score: its fitness, if measured.
        command: the command that found it.

    # Returns
        The new `af.CatalogEntry`.

    # Raises
        ValueError: as `af.add_entry` (bad or taken name, empty provenance).
    """
    return af.add_entry(
        name, canonical(formula), provenance, command=command, score=score
    )
