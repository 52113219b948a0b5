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

from keras_bnn_af.searchers.af_tree.crossover import crossover, to_catalog_entry
from keras_bnn_af.searchers.af_tree.mutations import (
    MUTATIONS,
    add_parameter,
    change_node,
    insert_node,
    move_parameter,
    mutate,
    random_tree,
    regenerate,
    remove_node,
    remove_parameter,
)
from keras_bnn_af.searchers.af_tree.space import (
    DEFAULT_BINARY,
    DEFAULT_UNARY,
    EDGE,
    MutationError,
    TreeSpace,
    canonical,
    depth,
    invalid_reason,
    is_valid,
    operator_count,
    parameter_count,
    within_limits,
)

__all__ = [
    "DEFAULT_BINARY",
    "DEFAULT_UNARY",
    "EDGE",
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
