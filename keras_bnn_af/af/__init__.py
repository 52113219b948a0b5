r"""The activation-function (AF) language: trees, formulas, genomes, a catalog.

An activation function (AF) is a small expression tree in one variable `x`, built
from frozen dataclasses (`Var`, `Const`, `Param`, `Unary`, `Binary`), so that
search code can create, compare, hash and mutate trees freely:

```python
from keras_bnn_af import af

tree = af.parse("x + sin(scale(x))")   # or af.resolve("x_plus_sin_scale_x")
str(tree)                               # 'x + sin(scale(x))', the canonical formula
af.from_genome([0, 6, 0]) == af.parse("x + sin(x)")   # GAAF's integer encoding
af.evaluate_numpy(tree, [0.0, 1.0])     # float64 reference values
```

# Formula syntax

- the variable `x` and non-negative numbers (`2`, `0.5`, `1e-3`);
- `a + b`, `a - b`, `a * b`, `a / b`, unary `-a`, and the powers `a^2`, `a^3`
  (or `a**2`, `a**3`); usual precedence, `-x^2` is `-(x^2)`;
- `sin cos tan atan erf erfc sigmoid exp abs` of one argument, plus the guarded
  `log(a) = log(|a| + 1e-8)` and the signed root `ssqrt(a) = sign(a) sqrt(|a| + 1e-8)`;
- `max(a, b)`, `min(a, b)`, and `ratio(a, b) = a / (a + b + 1e-8)`;
- division is guarded as in GAAF: `a / b` means `a / (b + 1e-8)`;
- learnable per-channel parameters, each occurrence with its own weight of shape
  `(C,)`: `scale(a) = s * a` (s starts at 1), `shift(a) = a + b` (b starts at 0),
  `param() = s` (starts at 1) and `blend(a, b) = s * a + (1 - s) * b` (starts at 1).

Catalog names (`catalog()`) and slug names such as `sin_x`, `x_plus_sin_x` or
`exp_neg_x_squared` (words joined by `_`; see `parse_slug`) are accepted wherever a
formula is.

# GAAF genomes

`from_genome([a, b, op])` is `B_op(U_a(x), U_b(x))`; the two-unit genome
`[u1, u2, u3, u4, b1, b2]` is `B_b2(U_u3(p), U_u4(x))` with
`p = B_b1(U_u1(x), U_u2(x))` (U_u4 reads x, not p).
`UNARY_GENES` and `BINARY_GENES` give the formula of every gene index, in GAAF's
order. GAAF's reference code computes unary gene 13 as `exp(-|x| + 1e-8)`; here it is
`exp(-abs(x))` (the factor `e^(1e-8)` rounds to 1 in float32).

# Modules

| module | what |
|---|---|
| `tree` | the nodes, the op tables, parameters, addressing subtrees |
| `syntax` | `parse`, `to_formula`, `parse_slug` |
| `genomes` | GAAF's gene tables and `from_genome` |
| `catalog` | `Catalog` (built-in entries plus your own, optionally in a file) |
| `resolve` | any AF spec -> a tree |
| `evaluation` | `evaluate_numpy`, the float64 reference |
| `analysis` | monotonicity, fold thresholds, viability for searches |
| `tf_ops` | `evaluate_tf` (the only module that imports TensorFlow) |

Everything but `evaluate_tf` is pure Python and NumPy: importing the language
does not import TensorFlow (`evaluate_tf` loads it on first use).

# TensorFlow forms

`evaluate_tf` builds the AF from TFLite builtin ops so that Larq Compute Engine can
run it: `tan(a)` is computed as `sin(a) / cos(a)`, `atan(a)` as `atan2(a, 1)`, and
`erf` and `erfc` as rational fits (float32 relative error below 4e-7 and 5e-6, exact
sign of `erf`, exact gradients `+-2/sqrt(pi) exp(-a^2)`).
`evaluate_numpy` is the float64 reference with the textbook functions.

# References
    - [GAAF: Searching Activation Functions for Binary Neural Networks through
        Genetic Algorithm](https://arxiv.org/abs/2206.03291)
    - [Discovering Parametric Activation Functions](https://arxiv.org/abs/2006.03179)
"""

from keras_bnn_af.af.analysis import (
    MIN_SIGN_SHARE,
    is_monotone,
    is_viable,
    monotone_threshold,
    sign_share,
    viability_problem,
)
from keras_bnn_af.af.catalog import (
    Catalog,
    CatalogEntry,
    add_entry,
    catalog,
    default_catalog,
    load_catalog,
    lookup,
    remove_entry,
    save_catalog,
)
from keras_bnn_af.af.evaluation import evaluate_numpy
from keras_bnn_af.af.genomes import BINARY_GENES, UNARY_GENES, from_genome
from keras_bnn_af.af.resolve import AFSpec, resolve
from keras_bnn_af.af.syntax import parse, parse_slug, to_formula
from keras_bnn_af.af.tree import (
    BINARY_OPS,
    EPS,
    FUNCTIONS,
    LEARNABLE,
    UNARY_OPS,
    Binary,
    Const,
    Node,
    Param,
    ParameterSlot,
    Unary,
    Var,
    nodes,
    parameters,
)

__all__ = [
    "BINARY_GENES",
    "BINARY_OPS",
    "EPS",
    "FUNCTIONS",
    "LEARNABLE",
    "MIN_SIGN_SHARE",
    "UNARY_GENES",
    "UNARY_OPS",
    "AFSpec",
    "Binary",
    "Catalog",
    "CatalogEntry",
    "Const",
    "Node",
    "Param",
    "ParameterSlot",
    "Unary",
    "Var",
    "add_entry",
    "catalog",
    "default_catalog",
    "evaluate_numpy",
    "evaluate_tf",
    "from_genome",
    "is_monotone",
    "is_viable",
    "load_catalog",
    "lookup",
    "monotone_threshold",
    "nodes",
    "parameters",
    "parse",
    "parse_slug",
    "remove_entry",
    "resolve",
    "save_catalog",
    "sign_share",
    "to_formula",
    "viability_problem",
]


def __getattr__(name: str):
    if name == "evaluate_tf":  # the one name that needs TensorFlow
        from keras_bnn_af.af.tf_ops import evaluate_tf

        return evaluate_tf
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
