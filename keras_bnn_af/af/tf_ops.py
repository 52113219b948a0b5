"""AF trees as TensorFlow ops that TFLite and Larq Compute Engine can run.

`tan(a)` is computed as `sin(a) / cos(a)`, `atan(a)` as `atan2(a, 1)`, and `erf`
and `erfc` as rational fits (float32 relative error below 4e-7 and 5e-6, exact
sign of `erf`, exact gradients `+-2/sqrt(pi) exp(-a^2)`), because TFLite has no
builtin op for them. This is the only module of the AF language that imports
TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from keras_bnn_af._keras import tf
from keras_bnn_af.af.evaluation import parameter_values, walk
from keras_bnn_af.af.tree import EPS, Node, Var, nodes

__all__ = ["evaluate_tf"]

# erf(a) ~ a P(a^2) / Q(a^2) on [-4, 4], and erfc(a) ~ exp(-a^2) R(|a|) / S(|a|) for
# a >= 0 (|a| <= 10 in R/S), 2 - erfc(-a) below: rational fits made for this module by
# iterated least squares on the relative error (float64 error 5e-8 and 2e-8; in
# float32 below 4e-7 and 5e-6). Only MUL/ADD/DIV/EXP/MINIMUM/MAXIMUM/SELECT, so
# TFLite runs them; the gradients are the exact -+2/sqrt(pi) exp(-a^2).
_ERF_P = (
    1.1283791482467675,
    0.19084878124823368,
    0.05277137358458652,
    0.0037763432408830476,
    0.00028362994653776725,
    2.0256622407680376e-06,
)
_ERF_Q = (
    1.0,
    0.5024681124849221,
    0.11425971092222678,
    0.014989912128827549,
    0.0011624898089719995,
    3.777682219457501e-05,
)
_ERFC_R = (
    1.000000015747562,
    1.2469477721248314,
    0.7409981383131375,
    0.2338788141873514,
    0.03384735185689907,
)
_ERFC_S = (
    1.0,
    2.3753280266493007,
    2.421253952324848,
    1.3429806976372891,
    0.41456372484995857,
    0.05999222828038503,
)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _horner(coefficients: Sequence[float], t):
    result = coefficients[-1]
    for coefficient in reversed(coefficients[:-1]):
        result = result * t + coefficient
    return result


@tf.custom_gradient
def _tf_erf(a):
    z = tf.clip_by_value(a, -4.0, 4.0)
    t = z * z

    def grad(dy):
        return dy * _TWO_OVER_SQRT_PI * tf.exp(-a * a)

    return z * _horner(_ERF_P, t) / _horner(_ERF_Q, t), grad


@tf.custom_gradient
def _tf_erfc(a):
    z = tf.abs(a)
    t = tf.minimum(z, 10.0)
    tail = tf.exp(-z * z) * _horner(_ERFC_R, t) / _horner(_ERFC_S, t)

    def grad(dy):
        return -dy * _TWO_OVER_SQRT_PI * tf.exp(-a * a)

    return tf.where(a < 0, 2.0 - tail, tail), grad


_TF_UNARY = {
    "neg": tf.negative,
    "square": tf.square,
    "cube": lambda a: a * a * a,
    "ssqrt": lambda a: tf.sign(a) * tf.sqrt(tf.abs(a) + EPS),
    "log": lambda a: tf.math.log(tf.abs(a) + EPS),
    "sin": tf.sin,
    "cos": tf.cos,
    "tan": lambda a: tf.sin(a) / tf.cos(a),
    "atan": lambda a: tf.math.atan2(a, tf.ones_like(a)),
    "sigmoid": tf.sigmoid,
    "erf": _tf_erf,
    "erfc": _tf_erfc,
    "exp": tf.exp,
    "abs": tf.abs,
}
_TF_BINARY = {
    "add": tf.add,
    "sub": tf.subtract,
    "mul": tf.multiply,
    "div": lambda a, b: a / (b + EPS),
    "ratio": lambda a, b: a / (a + b + EPS),
    "max": tf.maximum,
    "min": tf.minimum,
}


def evaluate_tf(tree: Node, x, params: Sequence | None = None):
    """AF(x) as TensorFlow ops; `params` are per-channel values in `parameters` order.

    Parameters broadcast against the last axis of `x`; None uses initial values.
    """
    x = tf.convert_to_tensor(x)
    values = parameter_values(tree, params, lambda v: tf.cast(v, x.dtype))
    result = walk(
        tree, x, iter(values), _TF_UNARY, _TF_BINARY, lambda v: tf.constant(v, x.dtype)
    )
    if not any(isinstance(node, Var) for node in nodes(tree)):
        result = result + tf.zeros_like(x)  # a constant AF still has x's shape
    return result
