"""Evaluating an AF tree: the float64 NumPy reference and the shared tree walk.

`evaluate_numpy` uses the textbook functions and is the reference every other
form of an AF is tested against. The TensorFlow form (`evaluate_tf`, in
`keras_bnn_af.af.tf_ops`) walks the tree the same way (`walk`) with TFLite
builtin ops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from keras_bnn_af.af.syntax import to_formula
from keras_bnn_af.af.tree import EPS, Const, Node, Param, Unary, Var, parameters

__all__ = ["evaluate_numpy", "parameter_values", "walk"]

_np_erf = np.vectorize(math.erf, otypes=[np.float64])
_np_erfc = np.vectorize(math.erfc, otypes=[np.float64])

_NP_UNARY = {
    "neg": np.negative,
    "square": np.square,
    "cube": lambda a: a * a * a,
    "ssqrt": lambda a: np.sign(a) * np.sqrt(np.abs(a) + EPS),
    "log": lambda a: np.log(np.abs(a) + EPS),
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "atan": np.arctan,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "erf": _np_erf,
    "erfc": _np_erfc,
    "exp": np.exp,
    "abs": np.abs,
}
_NP_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": lambda a, b: a / (b + EPS),
    "ratio": lambda a, b: a / (a + b + EPS),
    "max": np.maximum,
    "min": np.minimum,
}


def walk(
    tree: Node,
    x,
    values: Iterator,
    unary: Mapping[str, Callable],
    binary: Mapping[str, Callable],
    constant: Callable,
):
    """AF(x) computed with the given op tables; `values` yields the parameters."""

    def value(node: Node):
        if isinstance(node, Var):
            return x
        if isinstance(node, Const):
            return constant(node.value)
        if isinstance(node, Param):
            return next(values)
        if isinstance(node, Unary):
            if node.op == "scale":
                weight = next(values)
                return weight * value(node.arg)
            if node.op == "shift":
                weight = next(values)
                return value(node.arg) + weight
            return unary[node.op](value(node.arg))
        if node.op == "blend":
            weight = next(values)
            return weight * value(node.left) + (1.0 - weight) * value(node.right)
        return binary[node.op](value(node.left), value(node.right))

    return value(tree)


def parameter_values(tree: Node, params, convert: Callable) -> list:
    """One converted value per learnable weight: `params`, or the initial values."""
    slots = parameters(tree)
    if params is None:
        return [convert(slot.init) for slot in slots]
    params = list(params)
    if len(params) != len(slots):
        raise ValueError(
            f"{to_formula(tree)!r} has {len(slots)} learnable parameter(s) "
            f"({', '.join(s.kind for s in slots) or 'none'}) but got {len(params)} "
            "value(s). Pass one value (scalar or per-channel array) per parameter, "
            "in pre-order, or None for the initial values."
        )
    return [convert(value) for value in params]


def evaluate_numpy(tree: Node, x, params: Sequence | None = None) -> np.ndarray:
    """AF(x) in float64 NumPy with the textbook functions: the reference of the AF."""
    x = np.asarray(x, dtype=np.float64)
    values = parameter_values(tree, params, lambda v: np.asarray(v, dtype=np.float64))
    with np.errstate(all="ignore"):
        result = walk(tree, x, iter(values), _NP_UNARY, _NP_BINARY, lambda v: v)
        return np.asarray(result + np.zeros_like(x), dtype=np.float64)
