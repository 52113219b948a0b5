"""The AF-tree search space: vocabulary, size limits and the validity rule.

See `keras_bnn_af.searchers.af_tree` for the rules; this module holds
`TreeSpace`, the measures (`operator_count`, `depth`, `parameter_count`) and
`invalid_reason`, which every operator in `mutations` checks its results with.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from keras_bnn_af import af
from keras_bnn_af._errors import did_you_mean
from keras_bnn_af.af.tree import Binary, Node, Unary, Var, children, with_children
from keras_bnn_af.searchers.operators import OperatorError

__all__ = [
    "DEFAULT_BINARY",
    "DEFAULT_UNARY",
    "EDGE",
    "MutationError",
    "TreeSpace",
    "canonical",
    "depth",
    "invalid_reason",
    "is_valid",
    "operator_count",
    "parameter_count",
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

_GRID = np.linspace(-4.0, 4.0, 161)
_LARGEST = 1e30
_FLAT = 1e-9
_SIDE = 2  # grid points each sign needs: -abs(x) is >= 0 only at x = 0


class MutationError(OperatorError):
    """An operator found no valid tree, different from its input, within limits.

    `reason` is the message without the advice on how to fix it.
    """


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

    def to_json(self) -> dict:
        """The space as JSON-ready values (`from_json` rebuilds it)."""
        return {
            "unary": list(self.unary),
            "binary": list(self.binary),
            "max_depth": self.max_depth,
            "max_ops": self.max_ops,
            "max_parameters": self.max_parameters,
            "require_sign_change": self.require_sign_change,
        }

    @classmethod
    def from_json(cls, values: dict) -> TreeSpace:
        return cls(**values)

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
    return f"{name!r}{did_you_mean(name, allowed, inline=True)}"


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


def _merge_nested_edges(tree: Node) -> Node:
    """`scale(scale(a))` -> `scale(a)`: one learnable multiplier is as good as two."""
    while _is_edge(tree) and _is_edge(tree.arg):
        tree = tree.arg
    operands = children(tree)
    if not operands:
        return tree
    return with_children(tree, [_merge_nested_edges(child) for child in operands])


def operator_count(tree: str | Node) -> int:
    """The number of operator nodes: `Unary` and `Binary` nodes other than `scale`."""
    return sum(_is_operator(node) for node in af.nodes(_as_tree(tree)))


def depth(tree: str | Node) -> int:
    """The most operator nodes on a root-to-leaf path (`scale` nodes not counted)."""
    return _depth(_as_tree(tree))


def _depth(tree: Node) -> int:
    below = max((_depth(child) for child in children(tree)), default=0)
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


def _shuffled(rng: random.Random, items: Iterable) -> list:
    items = list(items)
    rng.shuffle(items)
    return items
