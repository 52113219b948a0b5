"""PANGAEA's operators on AF trees: random trees and seven mutations.

Each operator takes an explicit `random.Random`, returns a new valid tree within
the `TreeSpace` limits and different from its input, or raises `MutationError`
(see `keras_bnn_af.searchers.af_tree`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence

from keras_bnn_af import af
from keras_bnn_af.af.tree import (
    Binary,
    Node,
    Site,
    Unary,
    Var,
    children,
    replace_at,
    sites,
    subtree_at,
)
from keras_bnn_af.searchers.af_tree.space import (
    EDGE,
    MutationError,
    TreeSpace,
    _as_tree,
    _check_rng,
    _fits,
    _has_x,
    _is_edge,
    _is_operator,
    _merge_nested_edges,
    _problem,
    _shuffled,
    _space,
    operator_count,
    parameter_count,
)

__all__ = [
    "MUTATIONS",
    "add_parameter",
    "change_node",
    "insert_node",
    "move_parameter",
    "mutate",
    "random_tree",
    "regenerate",
    "remove_node",
    "remove_parameter",
]

#: The mutations `mutate` chooses from.
MUTATIONS: tuple[str, ...] = (
    "change_node",
    "regenerate",
    "insert_node",
    "remove_node",
    "add_parameter",
    "remove_parameter",
    "move_parameter",
)

# Random draws tried by `random_tree` and `regenerate`, which cannot enumerate
# their outcomes; the other operators try every candidate, in random order.
_DRAWS = 64


# --- the search loop shared by every operator ----------------------------------------


def _first_acceptable(
    name: str,
    tree: Node | None,
    candidates: Iterator[Node],
    space: TreeSpace,
    none_reason: str,
) -> Node:
    """The first candidate that is valid, within limits and different from `tree`.

    `tree` is the input (None for `random_tree`); `none_reason` says why there may
    be no candidate at all.
    """
    parents = () if tree is None else (tree,)
    tried = 0
    for candidate in candidates:
        tried += 1
        if (
            candidate != tree
            and _fits(candidate, space, parents)
            and _problem(candidate, space.require_sign_change) is None
        ):
            return candidate
    raise _no_tree_error(name, tree, tried, none_reason, space)


def _no_tree_error(
    name: str, tree: Node | None, tried: int, none_reason: str, space: TreeSpace
) -> MutationError:
    if tree is None:
        reason = (
            f"{name} found no valid tree: none of {tried} draws is valid (see "
            f"invalid_reason) within {space.limits()}"
        )
        return MutationError(
            f"{reason}. To fix it, widen the TreeSpace vocabulary or set "
            "require_sign_change=False.",
            reason=reason,
        )
    why = none_reason
    if tried:
        why = (
            f"none of {tried} candidates is a valid tree (see invalid_reason) "
            f"different from the input within {space.limits()}"
        )
    return MutationError(
        f"{name} cannot change {af.to_formula(tree)!r}: {why}. To fix it, try "
        "another mutation (mutate does), widen the TreeSpace vocabulary or loosen "
        "its limits.",
        reason=f"{name}: {why}",
    )


def _operator_sites(tree: Node) -> list[Site]:
    return [site for site, node, _ in sites(tree) if _is_operator(node)]


def _edge_sites(tree: Node) -> list[Site]:
    return [site for site, node, _ in sites(tree) if _is_edge(node)]


def _parameter_sites(tree: Node) -> list[Site]:
    """Sites whose edge may take a new `scale` (see the module docstring)."""
    return [
        site
        for site, node, parent in sites(tree)
        if _has_x(node) and not _is_edge(node) and not _is_edge(parent)
    ]


def _ops_for(node: Node, space: TreeSpace) -> tuple[str, ...]:
    return space.unary if isinstance(node, Unary) else space.binary


def _with_op(node: Node, op: str) -> Node:
    if isinstance(node, Unary):
        return Unary(op, node.arg)
    return Binary(op, node.left, node.right)


# --- initial trees -------------------------------------------------------------------


def random_tree(rng: random.Random, *, space: TreeSpace | None = None) -> Node:
    """A random valid tree in one of PANGAEA's initial forms.

    `b(u1(x), u2(x))` or `u2(u1(x))`, each with probability 1/2 (always the second
    when the vocabulary has no binary op), ops drawn uniformly; redrawn up to 64
    times until valid.

    # Arguments
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        The tree, without parameters.

    # Raises
        MutationError: if no draw is valid (e.g. `unary=["abs"]` is never
            sign-changing).
    """
    _check_rng(rng)
    space = _space(space)
    draws = (_initial_form(rng, space) for _ in range(_DRAWS))
    return _first_acceptable("random_tree", None, draws, space, "no draws")


def _initial_form(rng: random.Random, space: TreeSpace) -> Node:
    x = Var()
    if space.binary and rng.random() < 0.5:
        op = rng.choice(space.binary)
        return Binary(
            op, Unary(rng.choice(space.unary), x), Unary(rng.choice(space.unary), x)
        )
    inner = Unary(rng.choice(space.unary), x)
    return Unary(rng.choice(space.unary), inner)


# --- node mutations ------------------------------------------------------------------


def change_node(
    tree: str | Node, rng: random.Random, *, space: TreeSpace | None = None
) -> Node:
    """One random operator node gets another random op of the same arity.

    Nodes are tried in random order, and for each node its other ops in random
    order, until the result is valid.

    # Arguments
        tree: an af tree or formula.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        A new tree with the same shape and parameters.

    # Raises
        MutationError: if no change gives a valid tree.
    """
    _check_rng(rng)
    tree, space = _as_tree(tree), _space(space)

    def candidates() -> Iterator[Node]:
        for site in _shuffled(rng, _operator_sites(tree)):
            node = subtree_at(tree, site)
            others = [op for op in _ops_for(node, space) if op != node.op]
            for op in _shuffled(rng, others):
                yield replace_at(tree, site, _with_op(node, op))

    return _first_acceptable(
        "change_node", tree, candidates(), space, "it has no operator node to change"
    )


def regenerate(
    tree: str | Node, rng: random.Random, *, space: TreeSpace | None = None
) -> Node:
    """Every operator node gets a random op of its arity (PANGAEA's change-all).

    Ops are drawn independently and uniformly (an op may keep its value); the whole
    draw is repeated, up to 64 times, until the tree is valid and different.

    # Arguments
        tree: an af tree or formula.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        A new tree with the same shape and edge parameters.

    # Raises
        MutationError: if no draw gives a valid, different tree.
    """
    _check_rng(rng)
    tree, space = _as_tree(tree), _space(space)
    operator_sites = _operator_sites(tree)

    def redraw() -> Node:
        new = tree
        for site in operator_sites:
            node = subtree_at(new, site)
            new = replace_at(
                new, site, _with_op(node, rng.choice(_ops_for(node, space)))
            )
        return new

    draws = (redraw() for _ in range(_DRAWS if operator_sites else 0))
    return _first_acceptable(
        "regenerate", tree, draws, space, "it has no operator node to redraw"
    )


def insert_node(
    tree: str | Node, rng: random.Random, *, space: TreeSpace | None = None
) -> Node:
    """A new operator node on top of a random subtree `a`: `u(a)`, `b(a, x)` or
    `b(x, a)`.

    Any subtree qualifies (the root, inner nodes, `scale` nodes and leaves). Sites
    are tried in random order; at each, unary or binary in random order, then the
    ops in random order, a binary op taking `a` on a random side. (`b(x, x)`, from
    a leaf, is never valid: equal operands.)

    # Arguments
        tree: an af tree or formula.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        A new tree with exactly one more operator node and the same parameters.

    # Raises
        MutationError: if the tree is at `max_ops`, or no insertion is valid.
    """
    _check_rng(rng)
    tree, space = _as_tree(tree), _space(space)
    kinds = ["unary", "binary"] if space.binary else ["unary"]

    def candidates() -> Iterator[Node]:
        if operator_count(tree) >= space.max_ops:
            return
        for site, node, _ in _shuffled(rng, sites(tree)):
            for kind in _shuffled(rng, kinds):
                for op in _shuffled(rng, getattr(space, kind)):
                    yield replace_at(tree, site, _new_parent(op, kind, node, rng))

    return _first_acceptable(
        "insert_node",
        tree,
        candidates(),
        space,
        f"it already has max_ops={space.max_ops} operator nodes",
    )


def _new_parent(op: str, kind: str, child: Node, rng: random.Random) -> Node:
    if kind == "unary":
        return Unary(op, child)
    if rng.random() < 0.5:
        return Binary(op, child, Var())
    return Binary(op, Var(), child)


def remove_node(
    tree: str | Node, rng: random.Random, *, space: TreeSpace | None = None
) -> Node:
    """A random operator node is replaced by its argument, or by one of its two
    children (the other is dropped).

    Nodes are tried in random order, and a binary node's children in random order.
    A `scale` left directly inside a `scale` merges into it.

    # Arguments
        tree: an af tree or formula.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        A new tree with fewer operator nodes: one fewer for a unary node, one plus
        those of the dropped child for a binary node.

    # Raises
        MutationError: if the tree has no operator node, or no removal is valid.
    """
    _check_rng(rng)
    tree, space = _as_tree(tree), _space(space)

    def candidates() -> Iterator[Node]:
        for site in _shuffled(rng, _operator_sites(tree)):
            for kept in _shuffled(rng, children(subtree_at(tree, site))):
                yield _merge_nested_edges(replace_at(tree, site, kept))

    return _first_acceptable(
        "remove_node", tree, candidates(), space, "it has no operator node to remove"
    )


# --- parameter mutations -------------------------------------------------------------


def add_parameter(
    tree: str | Node, rng: random.Random, *, space: TreeSpace | None = None
) -> Node:
    """Wraps a random eligible subtree `a` in `scale(a)`: a new edge parameter.

    Eligible: `a` contains `x`, is not a `scale` and is not directly inside one.

    # Arguments
        tree: an af tree or formula.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        A new tree with exactly one more parameter and the same function at the
        initial parameter values.

    # Raises
        MutationError: if the tree is at `max_parameters`, has no eligible edge,
            or is not valid.
    """
    _check_rng(rng)
    tree, space = _as_tree(tree), _space(space)

    def candidates() -> Iterator[Node]:
        if parameter_count(tree) >= space.max_parameters:
            return
        for site in _shuffled(rng, _parameter_sites(tree)):
            yield replace_at(tree, site, Unary(EDGE, subtree_at(tree, site)))

    return _first_acceptable(
        "add_parameter",
        tree,
        candidates(),
        space,
        f"it has max_parameters={space.max_parameters} parameters or no eligible edge",
    )


def remove_parameter(
    tree: str | Node, rng: random.Random, *, space: TreeSpace | None = None
) -> Node:
    """Unwraps a random edge parameter `scale(a)` to `a`.

    # Arguments
        tree: an af tree or formula.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        A new tree with exactly one parameter fewer and the same function at the
        initial parameter values.

    # Raises
        MutationError: if the tree has no `scale` node, or is not valid.
    """
    _check_rng(rng)
    tree, space = _as_tree(tree), _space(space)

    def candidates() -> Iterator[Node]:
        for site in _shuffled(rng, _edge_sites(tree)):
            yield replace_at(tree, site, subtree_at(tree, site).arg)

    return _first_acceptable(
        "remove_parameter", tree, candidates(), space, "it has no scale() to remove"
    )


def move_parameter(
    tree: str | Node, rng: random.Random, *, space: TreeSpace | None = None
) -> Node:
    """Moves a random edge parameter to another random eligible edge.

    # Arguments
        tree: an af tree or formula.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.

    # Returns
        A new tree with the same number of parameters and the same function at the
        initial parameter values.

    # Raises
        MutationError: if the tree has no `scale` node, no other eligible edge, or
            is not valid.
    """
    _check_rng(rng)
    tree, space = _as_tree(tree), _space(space)

    def candidates() -> Iterator[Node]:
        for site in _shuffled(rng, _edge_sites(tree)):
            bare = replace_at(tree, site, subtree_at(tree, site).arg)
            targets = [other for other in _parameter_sites(bare) if other != site]
            for target in _shuffled(rng, targets):
                yield replace_at(bare, target, Unary(EDGE, subtree_at(bare, target)))

    return _first_acceptable(
        "move_parameter",
        tree,
        candidates(),
        space,
        "it has no scale() to move, or no other eligible edge",
    )


_MUTATORS: dict[str, Callable[..., Node]] = {
    "change_node": change_node,
    "regenerate": regenerate,
    "insert_node": insert_node,
    "remove_node": remove_node,
    "add_parameter": add_parameter,
    "remove_parameter": remove_parameter,
    "move_parameter": move_parameter,
}


def mutate(
    tree: str | Node,
    rng: random.Random,
    *,
    space: TreeSpace | None = None,
    mutations: Sequence[str] | None = None,
) -> tuple[Node, str]:
    """Applies one mutation, chosen uniformly among those that can apply.

    The mutations are tried in a random order; the first that returns a tree wins,
    so each mutation able to produce a valid, different tree is equally likely.

    # Arguments
        tree: an af tree or formula.
        rng: the random source.
        space: vocabulary, limits and validity rule; None for `TreeSpace()`.
        mutations: names from `MUTATIONS` to choose from; None for all.

    # Returns
        `(new_tree, mutation_name)`; `new_tree` is valid, within the limits, and its
        canonical formula differs from the input's.

    # Raises
        MutationError: if no mutation applies, with each mutation's reason.
        ValueError: for unknown mutation names.
    """
    _check_rng(rng)
    tree, space = _as_tree(tree), _space(space)
    names = _mutation_names(mutations)
    reasons = []
    for name in _shuffled(rng, names):
        try:
            return _MUTATORS[name](tree, rng, space=space), name
        except MutationError as error:
            reasons.append(error.reason)
    raise MutationError(
        f"No mutation of {af.to_formula(tree)!r} gives a valid, different tree "
        f"within {space.limits()}: {'; '.join(reasons)}. Widen the vocabulary, "
        "loosen the limits or start from another tree.",
        reason="; ".join(reasons),
    )


def _mutation_names(mutations: Sequence[str] | None) -> tuple[str, ...]:
    if mutations is None:
        return MUTATIONS
    if isinstance(mutations, str) or not isinstance(mutations, Iterable):
        raise ValueError(
            f"mutate got mutations={mutations!r}; expected a sequence of names such "
            "as ['change_node', 'insert_node']. Wrap a single name in a list."
        )
    names = tuple(dict.fromkeys(mutations))
    unknown = [name for name in names if name not in _MUTATORS]
    if unknown or not names:
        raise ValueError(
            f"mutate got mutations={list(mutations)!r} with unknown or no names "
            f"{unknown!r}; expected some of {', '.join(MUTATIONS)}. Fix the names "
            "or pass None for all."
        )
    return names
