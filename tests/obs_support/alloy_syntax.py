"""A parser for the Alloy configuration syntax (the language of Grafana Alloy's config files).

Alloy cannot run on these machines, so `alloy fmt` / `alloy validate` are not available; this
reads the file the way the syntax specification describes it
(https://grafana.com/docs/alloy/latest/get-started/configuration-syntax/): blocks
(`name.part "label" { ... }`), attributes (`name = expression`), and expressions made of
literals, lists, objects, references (`a.b.c`), function calls, unary and binary operators,
indexing and field access. It rejects anything else with the line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class AlloySyntaxError(ValueError):
    pass


@dataclass
class Ref:
    path: str  # a.b.c


@dataclass
class Call:
    name: str
    args: list[Any]


@dataclass
class Block:
    name: str
    label: str | None
    attrs: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    line: int = 0

    def children(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.name == name]


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%^<>!=.,\[\]{}()])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.S | re.X,
)

_BINARY = [["||"], ["&&"], ["==", "!=", "<", "<=", ">", ">="], ["+", "-"], ["*", "/", "%"], ["^"]]


@dataclass
class _Tok:
    kind: str
    text: str
    line: int
    col: int


def _tokenize(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, line, col = 0, 1, 1
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise AlloySyntaxError(f"line {line}, column {col}: unexpected {src[pos]!r}")
        kind = m.lastgroup or ""
        text = m.group(0)
        if kind == "nl" or (kind == "comment" and "\n" in text):
            toks.append(_Tok("nl", "\n", line, col))
        elif kind not in ("ws", "comment"):
            toks.append(_Tok(kind, text, line, col))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            col = len(text) - text.rfind("\n")
        else:
            col += len(text)
        pos = m.end()
    toks.append(_Tok("eof", "", line, col))
    return toks


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    out, i = [], 0
    escapes = {
        "n": "\n",
        "t": "\t",
        "r": "\r",
        '"': '"',
        "\\": "\\",
        "a": "\a",
        "b": "\b",
        "f": "\f",
        "v": "\v",
    }
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            if nxt == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise AlloySyntaxError(f"invalid escape \\{nxt} in {text}")
        out.append(c)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = _tokenize(src)
        self.i = 0

    def peek(self, skip_nl: bool = True) -> _Tok:
        j = self.i
        while skip_nl and self.toks[j].kind == "nl":
            j += 1
        return self.toks[j]

    def next(self, skip_nl: bool = True) -> _Tok:
        while skip_nl and self.toks[self.i].kind == "nl":
            self.i += 1
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: _Tok, what: str) -> AlloySyntaxError:
        shown = tok.text if tok.kind != "eof" else "end of file"
        return AlloySyntaxError(f"line {tok.line}, column {tok.col}: {what}, found {shown!r}")

    def expect(self, text: str) -> _Tok:
        tok = self.next()
        if tok.text != text:
            raise self.fail(tok, f"expected {text!r}")
        return tok

    def body(self, end: str) -> tuple[dict[str, Any], list[Block]]:
        attrs: dict[str, Any] = {}
        blocks: list[Block] = []
        while not self.at_end_of_body(end):
            self.statement(attrs, blocks)
        return attrs, blocks

    def at_end_of_body(self, end: str) -> bool:
        tok = self.peek()
        if end == "eof":
            return tok.kind == "eof"
        return tok.text == end

    def statement(self, attrs: dict[str, Any], blocks: list[Block]) -> None:
        """An attribute (into ATTRS) or a block (onto BLOCKS), and the end of its line."""
        start = self.next()
        if start.kind != "ident":
            raise self.fail(start, "expected an attribute or block name")
        name = self.dotted_name(start.text)
        tok = self.next(skip_nl=False)
        if tok.text == "=" and "." not in name:
            if name in attrs:
                raise self.fail(start, f"attribute {name} set twice")
            attrs[name] = self.expr()
        elif tok.kind == "string" or tok.text == "{":
            blocks.append(self.block(name, start.line, tok))
        else:
            raise self.fail(tok, f"expected '=' or a block after {name}")
        self.end_of_statement()

    def dotted_name(self, first: str) -> str:
        name = first
        while self.peek(skip_nl=False).text == ".":
            self.next(skip_nl=False)
            part = self.next(skip_nl=False)
            if part.kind != "ident":
                raise self.fail(part, "expected a name after '.'")
            name += "." + part.text
        return name

    def block(self, name: str, line: int, tok: _Tok) -> Block:
        """The block NAME on LINE, from TOK (its label or its '{') to its closing '}'."""
        label = None
        if tok.kind == "string":
            label = _unquote(tok.text)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
                raise self.fail(tok, "block labels must be identifiers")
            tok = self.next(skip_nl=False)
        if tok.text != "{":
            raise self.fail(tok, "expected '{'")
        inner_attrs, inner_blocks = self.body("}")
        self.expect("}")
        return Block(name, label, inner_attrs, inner_blocks, line)

    def end_of_statement(self) -> None:
        tok = self.peek(skip_nl=False)
        if tok.kind in ("nl", "eof") or tok.text == "}":
            return
        raise self.fail(tok, "expected a new line")

    def expr(self, level: int = 0) -> Any:
        if level == len(_BINARY):
            return self.unary()
        left = self.expr(level + 1)
        while self.peek(skip_nl=False).text in _BINARY[level]:
            op = self.next(skip_nl=False).text
            right = self.expr(level + 1)
            left = ("op", op, left, right)
        return left

    def unary(self) -> Any:
        if self.peek(skip_nl=False).text in ("!", "-"):
            op = self.next().text
            return ("unary", op, self.unary())
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while True:
            tok = self.peek(skip_nl=False)
            if tok.text == ".":
                self.next(skip_nl=False)
                name = self.next(skip_nl=False)
                if name.kind != "ident":
                    raise self.fail(name, "expected a field name")
                value = (
                    Ref(value.path + "." + name.text)
                    if isinstance(value, Ref)
                    else ("field", value, name.text)
                )
            elif tok.text == "[":
                self.next(skip_nl=False)
                index = self.expr()
                self.expect("]")
                value = ("index", value, index)
            elif tok.text == "(" and isinstance(value, Ref):
                self.next()
                args = []
                while self.peek().text != ")":
                    args.append(self.expr())
                    self.separator(")", "expected ',' or ')'")
                self.expect(")")
                value = Call(value.path, args)
            else:
                return value

    def separator(self, close: str, what: str) -> None:
        """After an item: its comma, or else the CLOSE that ends the items (left for the caller)."""
        if self.peek().text == ",":
            self.next()
        elif self.peek().text != close:
            raise self.fail(self.peek(), what)

    def primary(self) -> Any:
        tok = self.next()
        if tok.kind in ("string", "raw", "number", "ident"):
            return _literal(tok)
        bracketed = {"(": self.parenthesized, "[": self.list_items, "{": self.object_items}
        if tok.text not in bracketed:
            raise self.fail(tok, "expected an expression")
        return bracketed[tok.text]()

    def parenthesized(self) -> Any:
        value = self.expr()
        self.expect(")")
        return value

    def list_items(self) -> list[Any]:
        items = []
        while self.peek().text != "]":
            items.append(self.expr())
            self.separator("]", "expected ',' or ']'")
        self.expect("]")
        return items

    def object_items(self) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        while self.peek().text != "}":
            key = self.next()
            if key.kind not in ("ident", "string"):
                raise self.fail(key, "expected an object key")
            name = _unquote(key.text) if key.kind == "string" else key.text
            self.expect("=")
            obj[name] = self.expr()
            self.separator(
                "}", "expected ',' or '}' (a trailing comma is needed before a new line)"
            )
        self.expect("}")
        return obj


_KEYWORDS = {"true": True, "false": False, "null": None}


def _literal(tok: _Tok) -> Any:
    """The value of a string, raw string, number or identifier token (an identifier that is not
    a keyword is a reference)."""
    if tok.kind == "number":
        return float(tok.text) if "." in tok.text or "e" in tok.text.lower() else int(tok.text)
    if tok.kind == "ident":
        return _KEYWORDS[tok.text] if tok.text in _KEYWORDS else Ref(tok.text)
    return _unquote(tok.text)


def parse(src: str) -> Block:
    """Parse an Alloy file; the result is a root block holding the top-level blocks."""
    parser = _Parser(src)
    attrs, blocks = parser.body("eof")
    return Block("<root>", None, attrs, blocks)
