r"""The activation-function language of GAAF: trees, formulas, genomes and a catalog.

An activation function (AF) is a small expression tree in one variable `x`, built
from frozen dataclasses (`Var`, `Const`, `Param`, `Unary`, `Binary`), so that
search code can create, compare, hash and mutate trees freely:

```python
from keras_bnn_af.quantizers import af

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

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from keras_bnn_af._keras import tf

__all__ = [
    "BINARY_GENES",
    "BINARY_OPS",
    "EPS",
    "FUNCTIONS",
    "LEARNABLE",
    "UNARY_GENES",
    "UNARY_OPS",
    "AFSpec",
    "Binary",
    "CatalogEntry",
    "Const",
    "Node",
    "Param",
    "ParameterSlot",
    "Unary",
    "Var",
    "add_entry",
    "catalog",
    "evaluate_numpy",
    "evaluate_tf",
    "from_genome",
    "is_monotone",
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
    "to_formula",
]

#: The guard GAAF adds in `log`, `ssqrt` and the divisions.
EPS = 1e-8

# --- the tree ------------------------------------------------------------------------


class _Formula:
    """Tree nodes print as their canonical formula."""

    def __str__(self) -> str:
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

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_OPERATORS_HELP = "+ - * / ^2 ^3 (or **2 **3), unary -, parentheses, numbers and x"


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
    if isinstance(tree, Unary):
        yield from nodes(tree.arg)
    elif isinstance(tree, Binary):
        yield from nodes(tree.left)
        yield from nodes(tree.right)


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


# --- formatting ----------------------------------------------------------------------

# Precedence levels: 1 sums, 2 products, 3 unary minus, 4 powers, 5 atoms.


def to_formula(tree: Node) -> str:
    """The canonical formula of `tree`; `parse(to_formula(tree)) == tree`."""
    return _format(tree)[0]


def _format(node: Node) -> tuple[str, int]:
    if isinstance(node, Var):
        return "x", 5
    if isinstance(node, Const):
        value = node.value
        text = str(int(value)) if value.is_integer() and value < 1e16 else repr(value)
        return text, 5
    if isinstance(node, Param):
        return "param()", 5
    if isinstance(node, Unary):
        arg, level = _format(node.arg)
        if node.op == "neg":
            neg_arg = isinstance(node.arg, Unary) and node.arg.op == "neg"
            return f"-{_wrap(arg, level < 3 or neg_arg)}", 3
        if node.op in ("square", "cube"):
            return f"{_wrap(arg, level < 5)}^{2 if node.op == 'square' else 3}", 4
        return f"{node.op}({arg})", 5
    if node.op in _INFIX:
        level = 1 if node.op in ("add", "sub") else 2
        left, left_level = _format(node.left)
        right, right_level = _format(node.right)
        right_neg = isinstance(node.right, Unary) and node.right.op == "neg"
        left = _wrap(left, left_level < level)
        right = _wrap(right, right_level <= level or right_neg)
        return f"{left} {_INFIX[node.op]} {right}", level
    return f"{node.op}({_format(node.left)[0]}, {_format(node.right)[0]})", 5


def _wrap(text: str, parenthesize: bool) -> str:
    return f"({text})" if parenthesize else text


# --- parsing -------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|[-+*/^(),]))"
)


class _Token(NamedTuple):
    kind: str  # "number", "name", "op" or "end"
    text: str
    position: int


def _syntax_error(text: str, position: int, problem: str) -> ValueError:
    return ValueError(
        f"Cannot read the activation function {text!r}: {problem} at position "
        f"{position}:\n    {text}\n    {' ' * position}^\n"
        f"Expected a formula in x with {_OPERATORS_HELP}; the functions "
        f"{', '.join(f'{name}()' for name in FUNCTIONS)}; a catalog name "
        f"({', '.join(sorted(catalog()))}); a slug such as 'x_plus_sin_x'; or a GAAF "
        "genome such as [6, 0, 0]. Fix the formula, e.g. 'x + sin(x)'."
    )


def _tokenize(text: str) -> list[_Token]:
    tokens, position = [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return [*tokens, _Token("end", "", position)]
        match = _TOKEN.match(text, position)
        if match is None:
            raise _syntax_error(
                text, position, f"unexpected character {text[position]!r}"
            )
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()


class _Parser:
    """Recursive descent over `expr := term (('+'|'-') term)*` and friends."""

    def __init__(self, text: str, variables: Mapping[str, Node]):
        self.text, self.variables = text, variables
        self.tokens, self.index = _tokenize(text), 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def error(self, problem: str, token: _Token | None = None) -> ValueError:
        token = token or self.token
        return _syntax_error(self.text, token.position, problem)

    def expect(self, text: str, after: str) -> _Token:
        if self.token.text != text or self.token.kind != "op":
            raise self.error(f"expected {text!r} {after}, found {self._found()}")
        return self.take()

    def _found(self) -> str:
        if self.token.kind == "end":
            return "the end of the formula"
        return repr(self.token.text)

    def parse(self) -> Node:
        tree = self.expr()
        if self.token.kind != "end":
            raise self.error(f"unexpected {self._found()} after a complete formula")
        return tree

    def expr(self) -> Node:
        tree = self.term()
        while self.token.kind == "op" and self.token.text in "+-":
            op = "add" if self.take().text == "+" else "sub"
            tree = Binary(op, tree, self.term())
        return tree

    def term(self) -> Node:
        tree = self.unary()
        while self.token.kind == "op" and self.token.text in ("*", "/"):
            op = "mul" if self.take().text == "*" else "div"
            tree = Binary(op, tree, self.unary())
        return tree

    def unary(self) -> Node:
        if self.token.kind == "op" and self.token.text == "-":
            self.take()
            return Unary("neg", self.unary())
        return self.power()

    def power(self) -> Node:
        tree = self.atom()
        if self.token.kind == "op" and self.token.text in ("^", "**"):
            self.take()
            exponent = self.token
            value = float(exponent.text) if exponent.kind == "number" else None
            if value not in (2.0, 3.0):
                raise self.error(
                    f"unsupported power {self._found()}; only the integer powers 2 "
                    "and 3 are supported (write x^2 * x^2 for x^4)",
                    exponent,
                )
            self.take()
            tree = Unary("square" if value == 2.0 else "cube", tree)
            if self.token.kind == "op" and self.token.text in ("^", "**"):
                raise self.error("chained powers need parentheses, e.g. (x^2)^3")
        return tree

    def atom(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.take()
            value = float(token.text)
            if not math.isfinite(value):
                raise self.error(f"number {token.text!r} is not finite", token)
            return Const(value)
        if token.kind == "name":
            self.take()
            if token.text in self.variables:
                return self.variables[token.text]
            if token.text not in FUNCTIONS:
                raise self.error(self._unknown_name(token.text), token)
            return self.call(token)
        if token.kind == "op" and token.text == "(":
            self.take()
            tree = self.expr()
            self.expect(")", f"to close the '(' at position {token.position}")
            return tree
        raise self.error(
            f"expected a number, x, a function call or '(', found {self._found()}"
        )

    def _unknown_name(self, name: str) -> str:
        known = [*self.variables, *FUNCTIONS]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown name {name!r}{hint}"

    def call(self, name: _Token) -> Node:
        arity = FUNCTIONS[name.text]
        self.expect("(", f"after the function name {name.text!r}")
        args = []
        if not (self.token.kind == "op" and self.token.text == ")"):
            args.append(self.expr())
            while self.token.kind == "op" and self.token.text == ",":
                self.take()
                args.append(self.expr())
        if not (self.token.kind == "op" and self.token.text == ")"):
            raise self.error(
                f"expected ',' or ')' in the call of {name.text}, found {self._found()}"
            )
        if len(args) != arity:
            plural = "" if arity == 1 else "s"
            raise self.error(
                f"function {name.text} takes {arity} argument{plural} but got "
                f"{len(args)}"
            )
        self.take()
        if arity == 0:
            return Param()
        if arity == 1:
            return Unary(name.text, args[0])
        return Binary(name.text, args[0], args[1])


def parse(text: str, *, variables: Mapping[str, Node] | None = None) -> Node:
    """Parses a formula (see the module docstring) into a tree.

    # Arguments
        text: the formula, e.g. `"x + sin(x)"`.
        variables: name -> tree substituted for that name; default `{"x": Var()}`.

    # Raises
        ValueError: naming the formula, the position of the problem and the known
            functions and operators.
    """
    if not isinstance(text, str):
        raise ValueError(
            f"parse got {text!r} (type {type(text).__name__}); expected a formula "
            "string such as 'x + sin(x)'. Pass the formula as a str."
        )
    return _Parser(text, {"x": Var()} if variables is None else variables).parse()


# --- slugs ---------------------------------------------------------------------------

_SLUG_INFIX = {"plus": "add", "minus": "sub", "times": "mul", "over": "div"}
_SLUG_POSTFIX = {"squared": "square", "cubed": "cube"}
_SLUG = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")


def parse_slug(name: str) -> Node:
    """Parses a slug name: formula words joined by `_`.

    Words: `x`; numbers (`0p5` is 0.5); the infix `plus minus times over` (usual
    precedence); the prefix `neg`; the postfix `squared cubed`; and the function
    names, which take the following operand: `sin_x` is `sin(x)`,
    `x_plus_sin_x` is `x + sin(x)`, `exp_neg_x_squared` is `exp(-x^2)`,
    `max_x_0` is `max(x, 0)`, `blend_sin_x_x` is `blend(sin(x), x)`, and `param`
    is `param()`. A function's operand is `neg`/atom/postfix, so
    `sin_x_squared` is `sin(x^2)`. Formulas that need parentheses have no slug.

    # Raises
        ValueError: naming the slug, the position of the unknown or misplaced word,
            and the known words.
    """
    words, position = [], 0
    for word in name.split("_"):
        words.append(_Token("word", word, position))
        position += len(word) + 1
    words.append(_Token("end", "", len(name)))
    return _SlugParser(name, words).parse()


class _SlugParser:
    def __init__(self, name: str, words: list[_Token]):
        self.name, self.words, self.index = name, words, 0

    @property
    def word(self) -> _Token:
        return self.words[self.index]

    def take(self) -> _Token:
        word = self.word
        self.index += 1
        return word

    def error(self, problem: str) -> ValueError:
        known = [
            "x",
            "numbers such as 2 or 0p5",
            "param",
            "neg",
            *_SLUG_INFIX,
            *_SLUG_POSTFIX,
            *(f for f in FUNCTIONS if f != "param"),
        ]
        position = self.word.position
        return ValueError(
            f"Cannot read the slug {self.name!r}: {problem} at position {position}:"
            f"\n    {self.name}\n    {' ' * position}^\nExpected words joined by '_' "
            f"from: {', '.join(known)}; or a catalog name "
            f"({', '.join(sorted(catalog()))}). Fix the name, e.g. 'x_plus_sin_x', or "
            "pass a formula such as 'x + sin(x)'."
        )

    def parse(self) -> Node:
        tree = self.expr()
        if self.word.kind != "end":
            raise self.error(f"unexpected word {self.word.text!r}")
        return tree

    def expr(self) -> Node:
        tree = self.term()
        while self.word.text in ("plus", "minus"):
            tree = Binary(_SLUG_INFIX[self.take().text], tree, self.term())
        return tree

    def term(self) -> Node:
        tree = self.unary()
        while self.word.text in ("times", "over"):
            tree = Binary(_SLUG_INFIX[self.take().text], tree, self.unary())
        return tree

    def unary(self) -> Node:
        if self.word.text == "neg":
            self.take()
            return Unary("neg", self.unary())
        tree = self.atom()
        if self.word.text in _SLUG_POSTFIX:
            tree = Unary(_SLUG_POSTFIX[self.take().text], tree)
        return tree

    def atom(self) -> Node:
        word = self.word
        if word.kind == "end":
            raise self.error("the slug ends where an operand was expected")
        if re.fullmatch(r"\d+(p\d+)?", word.text):
            self.take()
            return Const(float(word.text.replace("p", ".")))
        if word.text == "x":
            self.take()
            return Var()
        if word.text == "param":
            self.take()
            return Param()
        if word.text in FUNCTIONS:
            self.take()
            if FUNCTIONS[word.text] == 1:
                return Unary(word.text, self.unary())
            return Binary(word.text, self.unary(), self.unary())
        if word.text in (*_SLUG_INFIX, *_SLUG_POSTFIX):
            raise self.error(f"the operator {word.text!r} needs an operand before it")
        close = difflib.get_close_matches(word.text, [*FUNCTIONS, *_SLUG_INFIX], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise self.error(f"unknown word {word.text!r}{hint}")


# --- genomes -------------------------------------------------------------------------

#: GAAF's unary genes, index -> formula in `x` (keep the order: genomes index it).
UNARY_GENES: tuple[str, ...] = (
    "x",
    "0",
    "x^2",
    "x^3",
    "ssqrt(x)",
    "log(x)",
    "sin(x)",
    "cos(x)",
    "sigmoid(x)",
    "tan(x)",
    "atan(x)",
    "erf(x)",
    "erfc(x)",
    "exp(-abs(x))",
    "exp(-x^2)",
    "max(x, 0)",
    "min(x, 0)",
    "abs(x)",
    "-x",
    "scale(x)",
    "shift(x)",
    "param()",
)

#: GAAF's binary genes, index -> formula in `x` and `y`.
BINARY_GENES: tuple[str, ...] = (
    "x + y",
    "x - y",
    "x * y",
    "x / y",
    "ratio(x, y)",
    "max(x, y)",
    "min(x, y)",
    "x * sigmoid(y)",
    "exp(-(x - y)^2)",
    "exp(-abs(x - y))",
    "blend(x, y)",
)


def _unary_gene(index: int, operand: Node) -> Node:
    return parse(UNARY_GENES[index], variables={"x": operand})


def _binary_gene(index: int, left: Node, right: Node) -> Node:
    return parse(BINARY_GENES[index], variables={"x": left, "y": right})


def from_genome(genome: Sequence[int]) -> Node:
    """The tree of a GAAF genome: `[a, b, op]` or `[u1, u2, u3, u4, b1, b2]`.

    # Raises
        ValueError: if the genome has another length or a gene out of range.
    """
    genes = list(genome) if isinstance(genome, Sequence | np.ndarray) else None
    ranges = [len(UNARY_GENES), len(UNARY_GENES), len(BINARY_GENES)]
    if genes is not None and len(genes) == 6:
        ranges = [len(UNARY_GENES)] * 4 + [len(BINARY_GENES)] * 2
    valid = (
        genes is not None
        and len(genes) in (3, 6)
        and all(
            isinstance(g, int | np.integer) and not isinstance(g, bool) and 0 <= g < n
            for g, n in zip(genes, ranges, strict=True)
        )
    )
    if not valid:
        raise ValueError(
            f"Invalid GAAF genome {genome!r}. Expected 3 integer genes [a, b, op] with "
            f"a, b in 0..{len(UNARY_GENES) - 1} (unary) and op in "
            f"0..{len(BINARY_GENES) - 1} (binary), or 6 genes "
            "[u1, u2, u3, u4, b1, b2]. See UNARY_GENES and BINARY_GENES for the "
            "ops, e.g. [6, 0, 0] is 'sin(x) + x'."
        )
    genes = [int(g) for g in genes]
    x = Var()
    if len(genes) == 3:
        a, b, op = genes
        return _binary_gene(op, _unary_gene(a, x), _unary_gene(b, x))
    u1, u2, u3, u4, b1, b2 = genes
    inner = _binary_gene(b1, _unary_gene(u1, x), _unary_gene(u2, x))
    return _binary_gene(b2, _unary_gene(u3, inner), _unary_gene(u4, x))


# --- resolving any AF spec -----------------------------------------------------------

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
        if _SLUG.fullmatch(text):
            return parse_slug(text)
        return parse(af)
    if isinstance(af, Sequence | np.ndarray):
        return from_genome(af)
    raise ValueError(
        f"Cannot use {af!r} (type {type(af).__name__}) as an activation function. "
        "Expected a catalog name such as 'sin_x', a formula such as 'x + sin(x)', "
        "a GAAF genome such as [6, 0, 0], or an af tree. Pass one of those."
    )


# --- evaluation ----------------------------------------------------------------------

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


def _evaluate(tree: Node, x, values: Iterator, unary, binary, constant):
    def walk(node: Node):
        if isinstance(node, Var):
            return x
        if isinstance(node, Const):
            return constant(node.value)
        if isinstance(node, Param):
            return next(values)
        if isinstance(node, Unary):
            if node.op == "scale":
                weight = next(values)
                return weight * walk(node.arg)
            if node.op == "shift":
                weight = next(values)
                return walk(node.arg) + weight
            return unary[node.op](walk(node.arg))
        if node.op == "blend":
            weight = next(values)
            return weight * walk(node.left) + (1.0 - weight) * walk(node.right)
        return binary[node.op](walk(node.left), walk(node.right))

    return walk(tree)


def _parameter_values(tree: Node, params, convert) -> list:
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


def evaluate_tf(tree: Node, x, params: Sequence | None = None):
    """AF(x) as TensorFlow ops; `params` are per-channel values in `parameters` order.

    Parameters broadcast against the last axis of `x`; None uses initial values.
    """
    x = tf.convert_to_tensor(x)
    values = _parameter_values(tree, params, lambda v: tf.cast(v, x.dtype))
    result = _evaluate(
        tree,
        x,
        iter(values),
        _TF_UNARY,
        _TF_BINARY,
        lambda value: tf.constant(value, x.dtype),
    )
    if not any(isinstance(node, Var) for node in nodes(tree)):
        result = result + tf.zeros_like(x)  # a constant AF still has x's shape
    return result


def evaluate_numpy(tree: Node, x, params: Sequence | None = None) -> np.ndarray:
    """AF(x) in float64 NumPy with the textbook functions: the reference of the AF."""
    x = np.asarray(x, dtype=np.float64)
    values = _parameter_values(tree, params, lambda v: np.asarray(v, dtype=np.float64))
    with np.errstate(all="ignore"):
        result = _evaluate(
            tree, x, iter(values), _NP_UNARY, _NP_BINARY, lambda value: value
        )
        return np.asarray(result + np.zeros_like(x), dtype=np.float64)


# --- monotonicity --------------------------------------------------------------------

_GRID = np.unique(
    np.concatenate(
        [
            np.linspace(-8.0, 8.0, 8001),
            np.geomspace(8.0, 1e300, 600),
            -np.geomspace(8.0, 1e300, 600),
        ]
    )
)


def _channel_params(tree: Node, params) -> list[np.ndarray]:
    return [
        np.atleast_1d(v).astype(np.float64)
        for v in _parameter_values(tree, params, np.asarray)
    ]


def is_monotone(af: AFSpec, params: Sequence | None = None) -> np.ndarray:
    """Whether AF is non-decreasing on the reals, per channel.

    Checked numerically in float64 on a dense grid: steps of 0.002 on [-8, 8] and
    600 log-spaced points on each side out to 1e300, allowing rounding-level
    decreases (1e-10 relative). A feature narrower than the grid step can be missed;
    a NaN anywhere counts as not monotone (so the answer errs on "no").

    # Arguments
        af: anything `resolve` accepts.
        params: per-channel values of the learnable parameters (`parameters(tree)`
            order), or None for their initial values.

    # Returns
        A bool array with one entry per channel (length 1 without parameters).
    """
    tree = resolve(af)
    values = _channel_params(tree, params)
    f = evaluate_numpy(tree, _GRID[:, None], values)
    f = np.broadcast_to(f, (len(_GRID), max([1, *(v.size for v in values)])))
    with np.errstate(invalid="ignore"):
        slack = 1e-10 * np.maximum(np.abs(f[:-1]), np.abs(f[1:])) + 1e-12
        slack = np.where(np.isfinite(slack), slack, 0.0)
        steps = f[1:] >= f[:-1] - slack
    return np.all(steps & ~np.isnan(f[1:]) & ~np.isnan(f[:-1]), axis=0)


def monotone_threshold(af: AFSpec, params: Sequence | None = None) -> np.ndarray | None:
    r"""Per-channel thresholds `t` with `AF(x) >= 0  <=>  x >= t`, for monotone AFs.

    Then `sign(AF(x)) = sign(x - t)` (with sign(0) = +1), so a converter can fold
    the binarizer into a plain threshold. `t` is the smallest float32 with
    `AF(t) >= 0` in float64 (bisection, then rounding up to float32); `-inf` when
    AF is never negative, `+inf` when it is always negative.

    # Returns
        A float32 array with one threshold per channel (length 1 without
        parameters), or None if AF is not non-decreasing (`is_monotone`) on some
        channel.
    """
    tree = resolve(af)
    values = _channel_params(tree, params)
    if not is_monotone(tree, values).all():
        return None
    channels = max([1, *(v.size for v in values)])
    values = [np.broadcast_to(v, (channels,)) for v in values]
    f = np.broadcast_to(
        evaluate_numpy(tree, _GRID[:, None], values), (len(_GRID), channels)
    )
    nonnegative = f >= 0
    first = np.argmax(nonnegative, axis=0)
    never = ~nonnegative.any(axis=0)
    always = nonnegative[0]
    inside = ~never & ~always
    low = np.where(inside, _GRID[np.maximum(first - 1, 0)], 0.0)
    high = np.where(inside, _GRID[first], 0.0)
    for _ in range(200):  # each bracket spans < 2^53 float64 steps
        middle = low + (high - low) / 2
        if not np.any((middle > low) & (middle < high)):
            break
        up = evaluate_numpy(tree, middle, values) >= 0
        high = np.where(up, middle, high)
        low = np.where(up, low, middle)
    threshold = high.astype(np.float32)
    threshold = np.where(
        threshold.astype(np.float64) < high,
        np.nextafter(threshold, np.float32(np.inf)),
        threshold,
    )
    threshold = np.where(always, -np.inf, np.where(never, np.inf, threshold))
    return threshold.astype(np.float32)


# --- the catalog ---------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogEntry:
    """A named AF: its canonical formula, where it comes from, and how it scored.

    # Arguments
        name: lower-case identifier, e.g. `"x_plus_sin_x"`.
        formula: canonical formula.
        provenance: where the AF comes from, stated honestly.
        command: the command that found or evaluated it, if any.
        score: its fitness or accuracy, if measured.
        genome: a GAAF genome computing the same function, if there is one.
        builtin: whether it ships with keras-bnn-af.
    """

    name: str
    formula: str
    provenance: str
    command: str | None = None
    score: float | None = None
    genome: tuple[int, ...] | None = None
    builtin: bool = False

    def to_json(self) -> dict:
        entry = dataclasses.asdict(self)
        del entry["builtin"]
        entry["genome"] = None if self.genome is None else list(self.genome)
        return entry


_BUILTIN: dict[str, CatalogEntry] | None = None
_USER: dict[str, CatalogEntry] = {}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _builtin() -> dict[str, CatalogEntry]:
    global _BUILTIN
    if _BUILTIN is None:
        text = resources.files(__package__).joinpath("af_catalog.json").read_text()
        entries = [
            _make_entry(**raw, builtin=True) for raw in json.loads(text)["entries"]
        ]
        _BUILTIN = {entry.name: entry for entry in entries}
    return _BUILTIN


def catalog() -> dict[str, CatalogEntry]:
    """Name -> entry for every built-in and user-added AF (a copy)."""
    return {**_builtin(), **_USER}


def lookup(name: str) -> CatalogEntry:
    """The catalog entry called `name`.

    # Raises
        ValueError: if there is none, listing the known names.
    """
    entries = catalog()
    if name not in entries:
        close = difflib.get_close_matches(str(name), entries, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"No activation function named {name!r} in the catalog. Expected one of "
            f"{', '.join(sorted(entries))}.{hint} Add your own with `add_entry`."
        )
    return entries[name]


def _make_entry(
    name: str,
    formula: str,
    provenance: str,
    command: str | None = None,
    score: float | None = None,
    genome: Sequence[int] | None = None,
    builtin: bool = False,
) -> CatalogEntry:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"Catalog name {name!r} is not valid; expected lower-case letters, digits "
            "and '_', starting with a letter, e.g. 'x_plus_sin_x'. Rename the entry."
        )
    if not isinstance(provenance, str) or not provenance.strip():
        raise ValueError(
            f"Catalog entry {name!r} got provenance {provenance!r}; expected a "
            "non-empty text saying where the AF comes from (paper, search run, ...)."
        )
    if score is not None and not isinstance(score, int | float):
        raise ValueError(
            f"Catalog entry {name!r} got score {score!r}; expected a number or None."
        )
    tree = parse(formula)
    if genome is not None:
        genome = tuple(int(g) for g in genome)
        from_genome(genome)  # validates
    return CatalogEntry(
        name=name,
        formula=to_formula(tree),
        provenance=provenance,
        command=command,
        score=None if score is None else float(score),
        genome=genome,
        builtin=builtin,
    )


def add_entry(
    name: str,
    formula: str,
    provenance: str,
    command: str | None = None,
    score: float | None = None,
    *,
    genome: Sequence[int] | None = None,
    overwrite: bool = False,
) -> CatalogEntry:
    """Adds a user AF to the in-memory catalog (save it with `save_catalog`).

    # Arguments
        name: lower-case identifier, e.g. `"found_042"`; built-in names are taken.
        formula: the AF formula; stored canonical.
        provenance: where it comes from, e.g. `"GAAF search run 3, generation 17"`.
        command: the command that found it.
        score: its fitness.
        genome: a GAAF genome computing the same function, if any.
        overwrite: replace an existing user entry of that name.

    # Raises
        ValueError: for a bad name, formula or provenance, or a name already used.
    """
    entry = _make_entry(name, formula, provenance, command, score, genome)
    if name in _builtin():
        raise ValueError(
            f"Catalog name {name!r} belongs to a built-in entry "
            f"({_builtin()[name].formula!r}); expected a new name. Pick another name."
        )
    if name in _USER and not overwrite:
        raise ValueError(
            f"Catalog already has a user entry {name!r} ({_USER[name].formula!r}); "
            "expected a new name. Pass overwrite=True to replace it."
        )
    _USER[name] = entry
    return entry


def remove_entry(name: str) -> None:
    """Removes a user entry from the in-memory catalog."""
    if name not in _USER:
        raise ValueError(
            f"No user catalog entry {name!r}; expected one of "
            f"{', '.join(sorted(_USER)) or '(none)'}. Built-in entries stay."
        )
    del _USER[name]


def save_catalog(path: str | Path, *, overwrite: bool = False) -> Path:
    """Writes the user entries as JSON (the built-in file's format) to `path`.

    # Raises
        FileExistsError: `path` exists and `overwrite` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Catalog file {str(path)!r} already exists; expected a new path. Pass "
            "another path, or overwrite=True to replace it."
        )
    entries = [entry.to_json() for entry in _USER.values()]
    path.write_text(json.dumps({"version": 1, "entries": entries}, indent=2) + "\n")
    return path


def load_catalog(path: str | Path, *, overwrite: bool = False) -> list[CatalogEntry]:
    """Adds the entries of a JSON catalog file (see `save_catalog`) as user entries.

    # Raises
        ValueError: if the file is not a catalog or an entry is invalid.
    """
    try:
        items = json.loads(Path(path).read_text())["entries"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TypeError("'entries' is not a list of objects")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"Cannot read the AF catalog {str(path)!r}: {type(error).__name__}: "
            f"{error}. Expected a JSON file {{'version': 1, 'entries': [...]}} as "
            "written by save_catalog."
        ) from None
    return [add_entry(**item, overwrite=overwrite) for item in items]
