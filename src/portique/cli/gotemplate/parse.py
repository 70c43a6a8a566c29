"""The template parser: tokens into a tree of nodes, as text/template/parse builds it.

A template parses to a set of named trees: the top one plus those made by
{{define}} and {{block}}. Errors read as Go's do: `template: NAME:LINE: MSG`.
Function names are checked while parsing (`function "x" not defined`), as
are variables (`undefined variable "$x"`).
"""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Any

from portique.cli.gotemplate import lex as L
from portique.cli.gotemplate.gofmt import quote
from portique.cli.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    _Else,
    _End,
)

__all__ = ["ParseError", "parse"]


class ParseError(Exception):
    """A template that does not parse; str() is Go's message."""


# ---------------------------------------------------------------- literals

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESC_RE = re.compile(
    r"\\(?:([abfnrtv\\'\"])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))"
)


def unquote(text: str) -> str:
    """strconv.Unquote for "..." and `...`; ValueError("invalid syntax") otherwise."""
    if text.startswith("`"):
        if len(text) < 2 or not text.endswith("`"):
            raise ValueError("invalid syntax")
        return text[1:-1].replace("\r", "")
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError("invalid syntax")
    return _unescape(text[1:-1], '"')


def _unescape(body: str, quote_ch: str) -> str:
    out: list[str] = []
    raw = bytearray()  # \x and octal escapes are bytes, joined as UTF-8
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            if ch == quote_ch or ch == "\n":
                raise ValueError("invalid syntax")
            if raw:
                out.append(raw.decode("utf-8", "surrogateescape"))
                raw.clear()
            out.append(ch)
            i += 1
            continue
        m = _ESC_RE.match(body, i)
        if m is None:
            raise ValueError("invalid syntax")
        simple, hx, octal, u4, u8 = m.groups()
        if simple is not None:
            if simple in "'\"" and simple != quote_ch:
                raise ValueError("invalid syntax")
            text = _ESCAPES.get(simple, simple)
        elif hx is not None or octal is not None:
            value = int(hx, 16) if hx is not None else int(octal, 8)
            if value > 255:
                raise ValueError("invalid syntax")
            raw.append(value)
            i = m.end()
            continue
        else:
            code = int(u4 or u8, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise ValueError("invalid syntax")
            text = chr(code)
        if raw:
            out.append(raw.decode("utf-8", "surrogateescape"))
            raw.clear()
        out.append(text)
        i = m.end()
    if raw:
        out.append(raw.decode("utf-8", "surrogateescape"))
    return "".join(out)


def _parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64) without the range check (callers do it)."""
    t = text
    sign = 1
    if t[:1] in "+-":
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    if re.fullmatch(r"0[0-7_]*", t) and len(t) > 1:
        t = "0o" + t[1:]  # a leading 0 means octal
    try:
        value = int(t, 0)
    except ValueError:
        return None
    return sign * value


def _parse_float(text: str) -> float | None:
    t = text.replace("_", "") if "_" in text else text
    try:
        if re.fullmatch(r"[+-]?0[xX].*", t):
            return float.fromhex(t)
        if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", t):
            return float(t)
    except (ValueError, OverflowError):
        return None
    return None


def new_number(pos: int, text: str, kind: str) -> NumberNode:
    n = NumberNode(pos, text)
    if kind == L.CHAR_CONSTANT:
        body = text[1:-1]
        value = _unescape(body, "'") if body not in ("", "'") else ""
        if len(value) != 1:
            raise ValueError(f"malformed character constant: {text}")
        n.as_int = n.as_uint = ord(value)
        n.as_float = float(ord(value))
        n.is_char = True
        return n
    if kind == L.COMPLEX or text.endswith("i"):
        body = text
        try:
            c = complex(body.replace("i", "j").replace("_", ""))
        except ValueError:
            raise ValueError(f"illegal number syntax: {quote(text)}") from None
        n.as_complex = c
        if c.imag == 0:
            n.as_float = c.real
            if c.real == int(c.real):
                n.as_int = int(c.real)
                if c.real >= 0:
                    n.as_uint = int(c.real)
        return n
    i = _parse_int(text)
    if i is not None:
        if 0 <= i < 1 << 64:
            n.as_uint = i
        if -(1 << 63) <= i < 1 << 63:
            n.as_int = i
    if n.as_int is not None:
        n.as_float = float(n.as_int)
    elif n.as_uint is not None:
        n.as_float = float(n.as_uint)
    else:
        f = _parse_float(text)
        if f is not None:
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {quote(text)}")
            n.as_float = f
            if f == int(f) and -(1 << 63) <= f < 1 << 63:
                n.as_int = int(f)
            if f == int(f) and 0 <= f < 1 << 64:
                n.as_uint = int(f)
    if n.as_int is None and n.as_uint is None and n.as_float is None:
        raise ValueError(f"illegal number syntax: {quote(text)}")
    return n


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(
        self, name: str, tokens: list[L.Token], funcs: Container[str], trees: dict[str, ListNode]
    ) -> None:
        self.name = name
        self.tokens = tokens
        self.i = 0
        self.funcs = funcs
        self.trees = trees
        self.vars = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.line = 1

    # token stream
    def next(self) -> L.Token:
        tok = self.tokens[min(self.i, len(self.tokens) - 1)]
        self.i += 1
        self.line = tok.line
        return tok

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> L.Token:
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def next_non_space(self) -> L.Token:
        tok = self.next()
        while tok.kind == L.SPACE:
            tok = self.next()
        return tok

    def peek_non_space(self) -> L.Token:
        j = self.i
        while self.tokens[min(j, len(self.tokens) - 1)].kind == L.SPACE:
            j += 1
        return self.tokens[min(j, len(self.tokens) - 1)]

    def errorf(self, msg: str) -> Any:
        raise ParseError(f"template: {self.name}:{self.line}: {msg}")

    def expect(self, kind: str, context: str) -> L.Token:
        tok = self.next_non_space()
        if tok.kind != kind:
            self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: L.Token, context: str) -> Any:
        if tok.kind == L.ERROR:
            extra = ""
            if self.action_line and self.action_line != tok.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(tok.val + extra)
        return self.errorf(f"unexpected {tok.describe()} in {context}")

    # structure
    def parse(self) -> ListNode:
        root = ListNode(self.peek().pos)
        while self.peek().kind != L.EOF:
            if self.peek().kind == L.LEFT_DELIM:
                start = self.i
                self.next()
                if self.next_non_space().kind == "define":
                    self.parse_definition()
                    continue
                self.i = start
            node = self.text_or_action()
            if isinstance(node, _End):
                self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        return root

    def add_tree(self, name: str, root: ListNode) -> None:
        old = self.trees.get(name)
        if old is None or _is_empty(old):
            self.trees[name] = root
        elif not _is_empty(root):
            self.errorf(f"template: multiple definition of template {quote(name)}")

    def parse_definition(self) -> None:
        context = "define clause"
        tok = self.next_non_space()
        if tok.kind not in (L.STRING, L.RAW_STRING):
            self.unexpected(tok, context)
        name = self.unquote(tok)
        self.expect(L.RIGHT_DELIM, context)
        saved_vars = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if isinstance(end, _Else):
            self.errorf(f"unexpected {end} in {context}")
        self.add_tree(name, body)

    def item_list(self) -> tuple[ListNode, _End]:
        body = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != L.EOF:
            node = self.text_or_action()
            if isinstance(node, _End):
                return body, node
            body.nodes.append(node)
        return self.errorf("unexpected EOF")  # type: ignore[no-any-return]

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.kind == L.TEXT:
            return TextNode(tok.pos, tok.val)
        if tok.kind == L.LEFT_DELIM:
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        return self.unexpected(tok, "input")  # type: ignore[no-any-return]

    def action(self) -> Node:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == "block":
            return self.block_control()
        if kind in ("break", "continue"):
            t = self.next_non_space()
            if t.kind != L.RIGHT_DELIM:
                self.unexpected(t, "{{" + kind + "}}")
            if not self.range_depth:
                self.errorf(f"{{{{{kind}}}}} outside {{{{range}}}}")
            return BreakNode(tok.pos) if kind == "break" else ContinueNode(tok.pos)
        if kind == "else":
            peek = self.peek_non_space()
            if peek.kind in ("if", "with"):
                return _Else(peek.pos)
            return _Else(self.expect(L.RIGHT_DELIM, "else").pos)
        if kind == "end":
            return _End(self.expect(L.RIGHT_DELIM, "end").pos)
        if kind in ("if", "range", "with"):
            return self.control(kind)
        if kind == "template":
            return self.template_control()
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, tok.line, self.pipeline("command", L.RIGHT_DELIM))

    def control(self, context: str) -> BranchNode:
        saved = len(self.vars)
        try:
            pipe = self.pipeline(context, L.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, _Else):
                if context in ("if", "with") and self.peek_non_space().kind == context:
                    self.next_non_space()
                    else_list = ListNode(nxt.pos)
                    else_list.nodes.append(self.control(context))
                else:
                    else_list, nxt = self.item_list()
                    if isinstance(nxt, _Else):
                        self.errorf(f"expected end; found {nxt}")
            return BranchNode(context, pipe, body, else_list)
        finally:
            del self.vars[saved:]

    def block_control(self) -> TemplateNode:
        context = "block clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = self.pipeline(context, L.RIGHT_DELIM)
        saved_vars, saved_depth = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, end = self.item_list()
        self.vars, self.range_depth = saved_vars, saved_depth
        if isinstance(end, _Else):
            self.errorf(f"unexpected {end} in {context}")
        self.add_tree(name, body)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def template_control(self) -> TemplateNode:
        context = "template clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = None
        if self.next_non_space().kind != L.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, L.RIGHT_DELIM)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def template_name(self, tok: L.Token, context: str) -> str:
        if tok.kind not in (L.STRING, L.RAW_STRING):
            self.unexpected(tok, context)
        return self.unquote(tok)

    def unquote(self, tok: L.Token) -> str:
        try:
            return unquote(tok.val)
        except ValueError as exc:
            return self.errorf(str(exc))  # type: ignore[no-any-return]

    # pipelines
    def pipeline(self, context: str, end: str) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, tok.line)
        while True:  # declarations: "$x :=", "$x =", "$i, $v :="
            start = self.i
            v = self.next_non_space()
            if v.kind != L.VARIABLE:
                self.i = start
                break
            nxt = self.peek_non_space()
            if nxt.kind in (L.ASSIGN, L.DECLARE):
                pipe.is_assign = nxt.kind == L.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.val.split(".")))
                self.vars.append(v.val)
            elif nxt.kind == L.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.val.split(".")))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in (L.VARIABLE, L.RIGHT_DELIM, L.RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            else:
                self.i = start
            break
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], BoolNode | DotNode | NumberNode | StringNode):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == L.SPACE:
                continue
            if tok.kind in (L.RIGHT_DELIM, L.RIGHT_PAREN):
                self.backup()
            elif tok.kind != L.PIPE:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == L.FIELD:
            pos = self.peek().pos
            fields = []
            while self.peek().kind == L.FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(pos, node.ident + fields)
            if isinstance(node, VariableNode):
                return VariableNode(pos, node.ident + fields)
            if isinstance(node, BoolNode | StringNode | NumberNode | DotNode):
                self.errorf(f"unexpected . after term {quote(str(node))}")
            return ChainNode(pos, node, fields)
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == L.IDENTIFIER:
            if tok.val not in self.funcs:
                self.errorf(f"function {quote(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.val)
        if kind == ".":
            return DotNode(tok.pos)
        if kind == "nil":
            return NilNode(tok.pos)
        if kind == L.VARIABLE:
            node = VariableNode(tok.pos, tok.val.split("."))
            if node.ident[0] not in self.vars:
                self.errorf(f"undefined variable {quote(node.ident[0])}")
            return node
        if kind == L.FIELD:
            return FieldNode(tok.pos, tok.val[1:].split("."))
        if kind == L.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if kind in (L.CHAR_CONSTANT, L.COMPLEX, L.NUMBER):
            try:
                return new_number(tok.pos, tok.val, kind)
            except ValueError as exc:
                self.errorf(str(exc))
        if kind == L.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", L.RIGHT_PAREN)
        if kind in (L.STRING, L.RAW_STRING):
            return StringNode(tok.pos, tok.val, self.unquote(tok))
        self.backup()
        return None


_OPERAND_START = {
    L.BOOL,
    L.CHAR_CONSTANT,
    L.COMPLEX,
    ".",
    L.FIELD,
    L.IDENTIFIER,
    L.NUMBER,
    "nil",
    L.RAW_STRING,
    L.STRING,
    L.VARIABLE,
    L.LEFT_PAREN,
}


def _is_empty(n: Node) -> bool:
    if isinstance(n, ListNode):
        return all(_is_empty(x) for x in n.nodes)
    if isinstance(n, TextNode):
        return not n.text.strip()
    return False


def parse(name: str, text: str, funcs: Container[str]) -> dict[str, ListNode]:
    """Parse `text`; the result maps template names to trees ("" or `name` is the top one)."""
    tokens = L.lex(text, break_ok="break" not in funcs, continue_ok="continue" not in funcs)
    trees: dict[str, ListNode] = {}
    parser = _Parser(name, tokens, funcs, trees)
    root = parser.parse()
    parser.add_tree(name, root)
    return trees
