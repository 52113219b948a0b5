"""AF trees: immutable expression nodes in one variable `x`, and their addresses.

Nodes are frozen dataclasses, so trees can be compared, hashed, cached and
rebuilt freely by search code. A *site* addresses a subtree by the child
indices on the path from the root (`()` is the root; 0 is a unary node's
argument or a binary node's left operand, 1 its right operand).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "BINARY_OPS",
    "EPS",
    "FUNCTIONS",
    "LEARNABLE",
    "UNARY_OPS",
    "Binary",
    "Const",
    "Node",
    "Param",
    "ParameterSlot",
    "Site",
    "Unary",
    "Var",
    "children",
    "nodes",
    "parameters",
    "replace_at",
    "sites",
    "subtree_at",
    "with_children",
]

#: The guard GAAF adds in `log`, `ssqrt` and the divisions.
EPS = 1e-8

#: Unary op -> its meaning. `neg`, `square` and `cube` are written `-a`, `a^2`, `a^3`.
UNARY_OPS: dict[str, str] = {
    "neg": "-a",
    "square": "a^2",
    "cube": "a^3",
    "ssqrt": "sign(a) * sqrt(|a| + 1e-8)",
    "log": "log(|a| + 1e-8)",
    "sin": "sin(a)",
    "cos": "cos(a)",
    "tan": "tan(a)",
    "atan": "atan(a)",
    "sigmoid": "1 / (1 + exp(-a))",
    "erf": "erf(a)",
    "erfc": "erfc(a) = 1 - erf(a)",
    "exp": "exp(a)",
    "abs": "|a|",
    "scale": "s * a, learnable s (starts at 1)",
    "shift": "a + b, learnable b (starts at 0)",
}

#: Binary op -> its meaning. `add sub mul div` are written `+ - * /`.
BINARY_OPS: dict[str, str] = {
    "add": "a + b",
    "sub": "a - b",
    "mul": "a * b",
    "div": "a / (b + 1e-8)",
    "ratio": "a / (a + b + 1e-8)",
    "max": "max(a, b)",
    "min": "min(a, b)",
    "blend": "s * a + (1 - s) * b, learnable s (starts at 1)",
}

#: Learnable op -> initial value of its per-channel weight.
LEARNABLE: dict[str, float] = {"scale": 1.0, "shift": 0.0, "param": 1.0, "blend": 1.0}

#: Function name -> number of arguments, as written in formulas.
FUNCTIONS: dict[str, int] = {
    **{op: 1 for op in UNARY_OPS if op not in ("neg", "square", "cube")},
    "max": 2,
    "min": 2,
    "ratio": 2,
    "blend": 2,
    "param": 0,
}


class _Formula:
    """Tree nodes print as their canonical formula."""

    def __str__(self) -> str:
        from keras_bnn_af.af.syntax import to_formula  # syntax builds on this module

        return to_formula(self)


@dataclass(frozen=True)
class Var(_Formula):
    """The input variable `x`."""


@dataclass(frozen=True)
class Const(_Formula):
    """A non-negative finite constant (negative numbers are `Unary("neg", Const)`)."""

    value: float

    def __post_init__(self):
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValueError(
                f"Const got {value!r} (type {type(value).__name__}); expected a "
                "finite number >= 0. Pass a float, e.g. Const(0.5)."
            )
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"Const got {value!r}; expected a finite number >= 0. Write a negative "
                "constant as Unary('neg', Const(...)), as the parser does for '-1'."
            )
        object.__setattr__(self, "value", float(value) + 0.0)  # -0.0 -> 0.0


@dataclass(frozen=True)
class Param(_Formula):
    """A learnable per-channel constant `s` (starts at 1), written `param()`."""


@dataclass(frozen=True)
class Unary(_Formula):
    """`op(arg)` for an op in `UNARY_OPS`."""

    op: str
    arg: Node

    def __post_init__(self):
        _check_op(self.op, UNARY_OPS, "Unary")
        _check_node(self.arg, f"Unary({self.op!r}).arg")


@dataclass(frozen=True)
class Binary(_Formula):
    """`op(left, right)` for an op in `BINARY_OPS`."""

    op: str
    left: Node
    right: Node

    def __post_init__(self):
        _check_op(self.op, BINARY_OPS, "Binary")
        _check_node(self.left, f"Binary({self.op!r}).left")
        _check_node(self.right, f"Binary({self.op!r}).right")


Node = Var | Const | Param | Unary | Binary
#: Child indices from the root: 0 = a unary node's argument or the left operand.
Site = tuple[int, ...]


def _check_op(op: str, ops: Mapping[str, str], kind: str) -> None:
    if op not in ops:
        raise ValueError(
            f"{kind} got the op {op!r}; expected one of {', '.join(ops)}. "
            "Use one of those names."
        )


def _check_node(node: Any, where: str) -> None:
    if not isinstance(node, Var | Const | Param | Unary | Binary):
        raise ValueError(
            f"{where} got {node!r} (type {type(node).__name__}); expected an AF "
            "tree node (Var, Const, Param, Unary or Binary). Build trees from "
            "those classes or with `parse`."
        )


def nodes(tree: Node) -> Iterator[Node]:
    """Every node of `tree` in pre-order (a node before its children, left first)."""
    yield tree
    for child in children(tree):
        yield from nodes(child)


class ParameterSlot(NamedTuple):
    """One learnable weight of a tree: its op (`scale`, ...) and initial value."""

    kind: str
    init: float


def parameters(tree: Node) -> tuple[ParameterSlot, ...]:
    """The learnable weights of `tree`, one per learnable node, in pre-order."""
    slots = []
    for node in nodes(tree):
        kind = "param" if isinstance(node, Param) else getattr(node, "op", None)
        if kind in LEARNABLE:
            slots.append(ParameterSlot(kind, LEARNABLE[kind]))
    return tuple(slots)


# --- addressing subtrees ----------------------------------------------------------


def children(node: Node) -> tuple[Node, ...]:
    """The operands of `node`: `(arg,)`, `(left, right)` or `()` for a leaf."""
    if isinstance(node, Unary):
        return (node.arg,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    return ()


def with_children(node: Node, new: Sequence[Node]) -> Node:
    """`node` with the same op and the operands `new` (a leaf stays as it is)."""
    if isinstance(node, Unary):
        return Unary(node.op, new[0])
    if isinstance(node, Binary):
        return Binary(node.op, new[0], new[1])
    return node


def sites(
    tree: Node, site: Site = (), parent: Node | None = None
) -> Iterator[tuple[Site, Node, Node | None]]:
    """`(site, subtree, parent)` for every subtree of `tree`, in pre-order."""
    yield site, tree, parent
    for index, child in enumerate(children(tree)):
        yield from sites(child, (*site, index), tree)


def subtree_at(tree: Node, site: Site) -> Node:
    """The subtree of `tree` at `site`."""
    for index in site:
        tree = children(tree)[index]
    return tree


def replace_at(tree: Node, site: Site, new: Node) -> Node:
    """A copy of `tree` with the subtree at `site` replaced by `new`."""
    if not site:
        return new
    operands = list(children(tree))
    operands[site[0]] = replace_at(operands[site[0]], site[1:], new)
    return with_children(tree, operands)
