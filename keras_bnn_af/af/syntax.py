"""The formula syntax of AFs: the canonical formatter, the parser and slug names.

```python
parse("x + sin(scale(x))")     # a tree
to_formula(parse("x+sin(x)"))  # 'x + sin(x)', the canonical formula
parse_slug("x_plus_sin_x")     # the same tree as parse("x + sin(x)")
```

The grammar is described in `keras_bnn_af.af`'s docstring. Every error names
the text, marks the position of the problem with a caret, and lists what was
expected there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import NamedTuple

from keras_bnn_af._errors import did_you_mean
from keras_bnn_af.af.tree import FUNCTIONS, Binary, Const, Node, Param, Unary, Var

__all__ = ["SLUG", "parse", "parse_slug", "to_formula"]

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_OPERATORS_HELP = "+ - * / ^2 ^3 (or **2 **3), unary -, parentheses, numbers and x"

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


def _catalog_names() -> str:
    from keras_bnn_af.af.catalog import catalog  # the catalog parses its formulas

    return ", ".join(sorted(catalog()))


def _syntax_error(text: str, position: int, problem: str) -> ValueError:
    return ValueError(
        f"Cannot read the activation function {text!r}: {problem} at position "
        f"{position}:\n    {text}\n    {' ' * position}^\n"
        f"Expected a formula in x with {_OPERATORS_HELP}; the functions "
        f"{', '.join(f'{name}()' for name in FUNCTIONS)}; a catalog name "
        f"({_catalog_names()}); a slug such as 'x_plus_sin_x'; or a GAAF "
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
        return f"unknown name {name!r}{did_you_mean(name, known, inline=True)}"

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
#: What a slug looks like: lower-case words and numbers joined by `_`.
SLUG = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")


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
            f"({_catalog_names()}). Fix the name, e.g. 'x_plus_sin_x', or "
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
        hint = did_you_mean(word.text, [*FUNCTIONS, *_SLUG_INFIX], inline=True)
        raise self.error(f"unknown word {word.text!r}{hint}")
