r"""PANGAEA-style evolution operators on activation-function trees.

PANGAEA evolves activation functions as trees of unary and binary operators, with
learnable multipliers \\(\alpha\\) on the tree's edges, e.g.
\\(\alpha_0 \sin(\alpha_1 x) + \operatorname{erf}(x)\\). Here a tree is a
`keras_bnn_af.quantizers.af` tree and an edge multiplier is a `scale(·)` node (a
learnable per-channel \\(s\\), starting at 1), so the example is
`scale(sin(scale(x))) + erf(x)`. Every function below is pure: it takes an explicit
`random.Random` and returns new trees (trees are immutable), so a search is
reproducible from its seed:

```python
import random
from keras_bnn_af.searchers import af_tree

rng = random.Random(0)
tree = af_tree.random_tree(rng)          # u2(u1(x)) or b(u1(x), u2(x))
child, how = af_tree.mutate(tree, rng)   # e.g. (..., "insert_node")
af_tree.canonical(child)                 # its canonical formula, a plain str
```

# Operators

Node mutations (an operator node is any `Unary` or `Binary` node except `scale`):

- `change_node`: one operator node gets another op of the same arity;
- `regenerate`: every operator node gets a random op of its arity (PANGAEA's
  change-all);
- `insert_node`: a new operator node goes on top of a random subtree `a` (any
  position: the root, an inner node or a leaf): `u(a)`, or `b(a, x)` / `b(x, a)`.
  The operator count grows by exactly 1, the parameter count stays;
- `remove_node`: a unary node is replaced by its argument (operators -1); a binary
  node by one of its two children, the other is dropped (operators -1 minus those of
  the dropped child, whose parameters go too). Should this put a `scale` directly
  inside a `scale`, the two merge into one (one parameter fewer).

Parameter mutations, on the edge parameters (`scale` nodes):

- `add_parameter`: wraps an eligible subtree `a` in `scale(a)` (parameters +1);
- `remove_parameter`: unwraps one `scale(a)` to `a` (parameters -1);
- `move_parameter`: unwraps one and wraps another eligible subtree (parameters
  stay).

Eligible edges: the edge above a subtree `a` (the root's output edge, or the input
edge of `a`'s parent) takes a parameter when `a` contains `x`, `a` is not a `scale`
node and `a`'s parent is not a `scale` node. So operators never create
`scale(scale(a))`, and constant subtrees (`0`, `param()`) are not scaled.

`mutate` applies one of the seven, chosen uniformly among those that can produce a
valid tree different from the input; `crossover` swaps random subtrees of two trees.
A scale at the root only rescales `AF(x)`: under GAAF's `sign(hardtanh(AF(x)))` it
moves the straight-through window and, for s > 0, keeps the sign.

# Limits and validity

A `TreeSpace` holds the vocabulary (default: every op of `af.UNARY_OPS` but the
learnable `scale` and `shift`, and every op of `af.BINARY_OPS` but the learnable
`blend`: PANGAEA's parameters are edge multipliers only) and the limits, measured
with `scale` nodes transparent:

- `operator_count(tree) <= max_ops` (default 7);
- `depth(tree) <= max_depth` (default 4): operator nodes on the longest
  root-to-leaf path, so `x` has depth 0 and `scale(sin(scale(x)))` depth 1;
- `parameter_count(tree) <= max_parameters` (default 3), counting every learnable
  weight of `af.parameters`.

Operators never push a measure past its limit (a tree already past a limit may
stay there or shrink). A tree is valid (`invalid_reason` returns None) when

- it contains `x`;
- no binary node has two equal operands (`x - x`, `x / x`, `max(a, a)`, `x * x`:
  constant, or better said by a unary op or a `scale`);
- every operator subtree, evaluated with the initial parameters on the grid of
  161 points evenly spaced on [-4, 4], is finite and at most 1e30 in magnitude
  (float32 overflows at 3.4e38; the margin leaves room for gradients), and, if it
  contains `x`, not constant: its values spread more than 1e-9 (1 + max |value|),
  so no dead branch such as `sigmoid(x - x)` survives;
- with `require_sign_change` (the default), `sign(AF(x))` (with sign(0) = +1) is
  -1 on at least two grid points and +1 on at least two, since it is what GAAF
  feeds the binary layer: `-abs(x)` and `max(x, 0)` fail, `min(x, 0)` passes.

Every operator returns only valid trees within the limits, different from its
input, and raises `MutationError` when there is none.

Trees travel as canonical formula strings (`canonical`); every result satisfies
`af.parse(af.to_formula(tree)) == tree`.

# References
    - [Discovering Parametric Activation Functions](https://arxiv.org/abs/2006.03179)
    - [GAAF: Searching Activation Functions for Binary Neural Networks through
        Genetic Algorithm](https://arxiv.org/abs/2206.03291)
"""

from __future__ import annotations

import difflib
import functools
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from keras_bnn_af.quantizers import af
from keras_bnn_af.quantizers.af import Binary, Node, Unary, Var

__all__ = [
    "DEFAULT_BINARY",
    "DEFAULT_UNARY",
    "MUTATIONS",
    "MutationError",
    "TreeSpace",
    "add_parameter",
    "canonical",
    "change_node",
    "crossover",
    "depth",
    "insert_node",
    "invalid_reason",
    "is_valid",
    "move_parameter",
    "mutate",
    "operator_count",
    "parameter_count",
    "random_tree",
    "regenerate",
    "remove_node",
    "remove_parameter",
    "to_catalog_entry",
    "within_limits",
]

#: The edge parameter: a learnable per-channel multiplier, never drawn as an op.
EDGE = "scale"

#: Unary ops drawn by default: all but the learnable `scale` (the edge parameter)
#: and `shift`.
DEFAULT_UNARY: tuple[str, ...] = tuple(
    op for op in af.UNARY_OPS if op not in (EDGE, "shift")
)
#: Binary ops drawn by default: all but the learnable `blend`.
DEFAULT_BINARY: tuple[str, ...] = tuple(op for op in af.BINARY_OPS if op != "blend")

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

_GRID = np.linspace(-4.0, 4.0, 161)
_LARGEST = 1e30
_FLAT = 1e-9
_SIDE = 2  # grid points each sign needs: -abs(x) is >= 0 only at x = 0

Site = tuple[int, ...]  # child indices from the root: 0 = arg or left, 1 = right


class MutationError(ValueError):
    """An operator found no valid tree, different from its input, within limits.

    `reason` is the message without the advice on how to fix it.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


# --- the search space ----------------------------------------------------------------


@dataclass(frozen=True)
class TreeSpace:
    """The operators that may be drawn, the size limits, and the validity rule.

    ```python
    space = TreeSpace(unary=["sin", "cos", "erf", "neg"], binary=["add", "mul"])
    tree = random_tree(random.Random(0), space=space)
    ```

    # Arguments
        unary: names from `af.UNARY_OPS` (not `scale`, the edge parameter); None
            for `DEFAULT_UNARY`. At least one.
        binary: names from `af.BINARY_OPS`; None for `DEFAULT_BINARY`. May be empty
            (trees are then chains of unary ops).
        max_depth: most operator nodes on a root-to-leaf path (>= 2).
        max_ops: most operator nodes (>= 3, so both initial forms fit).
        max_parameters: most learnable weights (`af.parameters`), >= 0.
        require_sign_change: whether `sign(AF(x))` of a valid tree must take both
            values on the grid (see the module docstring).

    # Raises
        ValueError: for unknown operator names (naming them and the known ones) or
            limits out of range.
    """

    unary: Sequence[str] | None = DEFAULT_UNARY
    binary: Sequence[str] | None = DEFAULT_BINARY
    max_depth: int = 4
    max_ops: int = 7
    max_parameters: int = 3
    require_sign_change: bool = True

    def __post_init__(self):
        unary = _operator_names(self.unary, "unary", DEFAULT_UNARY)
        binary = _operator_names(self.binary, "binary", DEFAULT_BINARY)
        if not unary:
            raise ValueError(
                "TreeSpace got unary=[]; expected at least one unary operator name, "
                "since both initial forms u2(u1(x)) and b(u1(x), u2(x)) use unary "
                f"ops. Pass some of: {', '.join(_allowed('unary'))}."
            )
        object.__setattr__(self, "unary", unary)
        object.__setattr__(self, "binary", binary)
        _check_limit("max_depth", self.max_depth, 2, "the initial forms have depth 2")
        _check_limit("max_ops", self.max_ops, 3, "b(u1(x), u2(x)) has 3 operators")
        _check_limit("max_parameters", self.max_parameters, 0, "0 means none")
        if not isinstance(self.require_sign_change, bool):
            raise ValueError(
                f"TreeSpace got require_sign_change={self.require_sign_change!r}; "
                "expected True or False."
            )

    def limits(self) -> str:
        """The limits as text, e.g. `"max_depth=4, max_ops=7, max_parameters=3"`."""
        return (
            f"max_depth={self.max_depth}, max_ops={self.max_ops}, "
            f"max_parameters={self.max_parameters}"
        )


def _allowed(kind: str) -> tuple[str, ...]:
    if kind == "unary":
        return tuple(op for op in af.UNARY_OPS if op != EDGE)
    return tuple(af.BINARY_OPS)


def _operator_names(names, kind: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if names is None:
        return default
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise ValueError(
            f"TreeSpace got {kind}={names!r}; expected a sequence of operator names "
            f"such as {list(default[:2])!r}. Wrap a single name in a list."
        )
    names = tuple(dict.fromkeys(names))  # drops repeats, keeps the order
    allowed = _allowed(kind)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        problems = "; ".join(_why_unknown(name, kind, allowed) for name in unknown)
        raise ValueError(
            f"TreeSpace got unknown {kind} operator names: {problems}. Expected "
            f"names from: {', '.join(allowed)}. Fix or drop those names, or pass "
            f"{kind}=None for the default vocabulary."
        )
    return names


def _why_unknown(name, kind: str, allowed: tuple[str, ...]) -> str:
    other = "binary" if kind == "unary" else "unary"
    if name == EDGE:
        return (
            f"{name!r} is the edge parameter, added by add_parameter, not drawn as "
            "an operator"
        )
    if isinstance(name, str) and name in _allowed(other):
        return f"{name!r} is a {other} operator (pass it in {other}=)"
    close = difflib.get_close_matches(str(name), allowed, n=1)
    return f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _check_limit(name: str, value, least: int, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(
            f"TreeSpace got {name}={value!r}; expected an integer >= {least} "
            f"({why}). Pass such an integer."
        )


def _space(space: TreeSpace | None) -> TreeSpace:
    if space is None:
        return TreeSpace()
    if not isinstance(space, TreeSpace):
        raise ValueError(
            f"Got space={space!r} (type {type(space).__name__}); expected a TreeSpace "
            "or None. Build one with TreeSpace(unary=[...], binary=[...])."
        )
    return space


# --- trees, sites and measures -------------------------------------------------------


def canonical(formula_or_tree: str | Node) -> str:
    """The canonical formula of a formula string or tree (`af.parse`, `af.to_formula`).

    # Raises
        ValueError: for a malformed formula or something that is neither.
    """
    return af.to_formula(_as_tree(formula_or_tree))


def _as_tree(tree: str | Node) -> Node:
    if isinstance(tree, str):
        return af.parse(tree)
    if isinstance(tree, Node):
        return tree
    raise ValueError(
        f"Got {tree!r} (type {type(tree).__name__}); expected an af tree or a formula "
        "string such as 'sin(x) + cos(x)'. Pass af.parse(formula) or the formula."
    )


def _check_rng(rng) -> None:
    if not isinstance(rng, random.Random):
        raise ValueError(
            f"Got rng={rng!r} (type {type(rng).__name__}); expected a random.Random "
            "instance. Pass random.Random(seed) so results are reproducible."
        )


def _is_edge(node: Node | None) -> bool:
    return isinstance(node, Unary) and node.op == EDGE


def _is_operator(node: Node) -> bool:
    return isinstance(node, Binary) or (isinstance(node, Unary) and node.op != EDGE)


def _has_x(tree: Node) -> bool:
    return any(isinstance(node, Var) for node in af.nodes(tree))


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.arg,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    return ()


def _with_children(node: Node, children: Sequence[Node]) -> Node:
    if isinstance(node, Unary):
        return Unary(node.op, children[0])
    return Binary(node.op, children[0], children[1])


def _sites(
    tree: Node, site: Site = (), parent: Node | None = None
) -> Iterator[tuple[Site, Node, Node | None]]:
    """(site, subtree, parent) for every subtree, in pre-order."""
    yield site, tree, parent
    for index, child in enumerate(_children(tree)):
        yield from _sites(child, (*site, index), tree)


def _at(tree: Node, site: Site) -> Node:
    for index in site:
        tree = _children(tree)[index]
    return tree


def _replace(tree: Node, site: Site, new: Node) -> Node:
    if not site:
        return new
    children = list(_children(tree))
    children[site[0]] = _replace(children[site[0]], site[1:], new)
    return _with_children(tree, children)


def _merge_nested_edges(tree: Node) -> Node:
    """`scale(scale(a))` -> `scale(a)`: one learnable multiplier is as good as two."""
    while _is_edge(tree) and _is_edge(tree.arg):
        tree = tree.arg
    children = _children(tree)
    if not children:
        return tree
    return _with_children(tree, [_merge_nested_edges(child) for child in children])


def operator_count(tree: str | Node) -> int:
    """The number of operator nodes: `Unary` and `Binary` nodes other than `scale`."""
    return sum(_is_operator(node) for node in af.nodes(_as_tree(tree)))


def depth(tree: str | Node) -> int:
    """The most operator nodes on a root-to-leaf path (`scale` nodes not counted)."""
    return _depth(_as_tree(tree))


def _depth(tree: Node) -> int:
    below = max((_depth(child) for child in _children(tree)), default=0)
    return below + _is_operator(tree)


def parameter_count(tree: str | Node) -> int:
    """The number of learnable weights, `len(af.parameters(tree))`."""
    return len(af.parameters(_as_tree(tree)))


_MEASURES: tuple[tuple[Callable[[Node], int], str], ...] = (
    (operator_count, "max_ops"),
    (_depth, "max_depth"),
    (parameter_count, "max_parameters"),
)


def within_limits(tree: str | Node, space: TreeSpace | None = None) -> bool:
    """Whether `tree` has at most `max_ops` operators, `max_depth` depth and
    `max_parameters` learnable weights."""
    return _fits(_as_tree(tree), _space(space), ())


def _fits(candidate: Node, space: TreeSpace, parents: Sequence[Node]) -> bool:
    """Within every limit, or no further past it than the largest parent."""
    for measure, limit in _MEASURES:
        allowed = max([getattr(space, limit), *(measure(p) for p in parents)])
        if measure(candidate) > allowed:
            return False
    return True


# --- validity ------------------------------------------------------------------------


def invalid_reason(tree: str | Node, space: TreeSpace | None = None) -> str | None:
    """Why `tree` is not a usable AF, or None if it is (rule: module docstring).

    # Arguments
        tree: an af tree or formula.
        space: its `require_sign_change` decides whether `sign(AF(x))` must take
            both values on the grid; None for the default `TreeSpace()`.

    # Returns
        None for a valid tree, otherwise a short reason such as
        `"constant in x (it has no x)"`.
    """
    return _problem(_as_tree(tree), _space(space).require_sign_change)


def is_valid(tree: str | Node, space: TreeSpace | None = None) -> bool:
    """Whether `invalid_reason(tree, space)` is None."""
    return invalid_reason(tree, space) is None


@functools.lru_cache(maxsize=16384)
def _problem(tree: Node, require_sign_change: bool) -> str | None:
    if not _has_x(tree):
        return "constant in x (it has no x)"
    for node in af.nodes(tree):
        problem = _subtree_problem(node) if _is_operator(node) else None
        if problem:
            return problem
    values = _grid_values(tree)
    negative = np.count_nonzero(values < 0)
    if require_sign_change and min(negative, len(values) - negative) < _SIDE:
        return "sign(AF(x)) is constant on [-4, 4], up to one grid point"
    return None


@functools.lru_cache(maxsize=16384)
def _subtree_problem(node: Node) -> str | None:
    formula = af.to_formula(node)
    if isinstance(node, Binary) and node.left == node.right:
        return f"{formula} has two equal operands (a unary op or scale says that)"
    values = _grid_values(node)
    # `not <=` is also True for NaN.
    if not np.all(np.abs(values) <= _LARGEST):
        return f"{formula} is not finite or above {_LARGEST:g} in magnitude on [-4, 4]"
    if _has_x(node) and np.ptp(values) <= _FLAT * (1.0 + np.abs(values).max()):
        return f"{formula} is constant in x on [-4, 4]"
    return None


@functools.lru_cache(maxsize=4096)  # 161 float64 values each
def _grid_values(tree: Node) -> np.ndarray:
    values = af.evaluate_numpy(tree, _GRID)
    values.setflags(write=False)
    return values


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


def _shuffled(rng: random.Random, items: Iterable) -> list:
    items = list(items)
    rng.shuffle(items)
    return items


def _operator_sites(tree: Node) -> list[Site]:
    return [site for site, node, _ in _sites(tree) if _is_operator(node)]


def _edge_sites(tree: Node) -> list[Site]:
    return [site for site, node, _ in _sites(tree) if _is_edge(node)]


def _parameter_sites(tree: Node) -> list[Site]:
    """Sites whose edge may take a new `scale` (see the module docstring)."""
    return [
        site
        for site, node, parent in _sites(tree)
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
            node = _at(tree, site)
            others = [op for op in _ops_for(node, space) if op != node.op]
            for op in _shuffled(rng, others):
                yield _replace(tree, site, _with_op(node, op))

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
    sites = _operator_sites(tree)

    def redraw() -> Node:
        new = tree
        for site in sites:
            node = _at(new, site)
            new = _replace(new, site, _with_op(node, rng.choice(_ops_for(node, space))))
        return new

    draws = (redraw() for _ in range(_DRAWS if sites else 0))
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
        for site, node, _ in _shuffled(rng, _sites(tree)):
            for kind in _shuffled(rng, kinds):
                for op in _shuffled(rng, getattr(space, kind)):
                    yield _replace(tree, site, _new_parent(op, kind, node, rng))

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
            for kept in _shuffled(rng, _children(_at(tree, site))):
                yield _merge_nested_edges(_replace(tree, site, kept))

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
            yield _replace(tree, site, Unary(EDGE, _at(tree, site)))

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
            yield _replace(tree, site, _at(tree, site).arg)

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
            bare = _replace(tree, site, _at(tree, site).arg)
            targets = [other for other in _parameter_sites(bare) if other != site]
            for target in _shuffled(rng, targets):
                yield _replace(bare, target, Unary(EDGE, _at(bare, target)))

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
        for site_a, _, _ in _sites(a)
        for site_b, _, _ in _sites(b)
        if site_a or site_b
    ]

    def children() -> Iterator[tuple[Node, Node]]:
        for site_a, site_b in _shuffled(rng, pairs):
            yield (
                _merge_nested_edges(_replace(a, site_a, _at(b, site_b))),
                _merge_nested_edges(_replace(b, site_b, _at(a, site_a))),
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
