"""The template lexer: text and actions into tokens, as text/template/parse lexes.

Actions are delimited by "{{" and "}}"; "{{- " and " -}}" trim the white space
(space, tab, CR, LF) next to them; "{{/* ... */}}" is a comment. Inside an
action: spaces, fields (.Name), variables ($x), identifiers, keywords, strings
("...", `...`), character constants ('a'), numbers, '(' ')' '|' ',' ':=' '='.
Positions are character offsets into the template; lines count newlines.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Token", "lex"]

# token kinds
ERROR = "error"
BOOL = "bool"
CHAR = "char"  # a printable ASCII character: the grab bag for ','
CHAR_CONSTANT = "charconst"
COMPLEX = "complex"
ASSIGN = "="
DECLARE = ":="
EOF = "EOF"
FIELD = "field"
IDENTIFIER = "identifier"
LEFT_DELIM = "{{"
LEFT_PAREN = "("
NUMBER = "number"
PIPE = "|"
RAW_STRING = "rawstring"
RIGHT_DELIM = "}}"
RIGHT_PAREN = ")"
SPACE = "space"
STRING = "string"
TEXT = "text"
VARIABLE = "variable"

KEYWORDS = {
    "block",
    "break",
    "continue",
    "define",
    "else",
    "end",
    "if",
    "range",
    "nil",
    "template",
    "with",
}
_SPACE = " \t\r\n"


class Token(NamedTuple):
    kind: str  # one of the kinds above, or a keyword
    pos: int
    val: str
    line: int

    def describe(self) -> str:
        """How the parser names the token in an error (Go's item.String)."""
        if self.kind == EOF:
            return "EOF"
        if self.kind == ERROR:
            return self.val
        if self.kind in KEYWORDS or self.kind == ".":
            return f"<{self.val}>"
        from portique.cli.gotemplate.gofmt import quote

        if len(self.val) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class _Lexer:
    def __init__(self, text: str, break_ok: bool, continue_ok: bool) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.paren_depth = 0
        self.tokens: list[Token] = []
        self.break_ok = break_ok
        self.continue_ok = continue_ok

    # helpers
    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def emit(self, kind: str) -> None:
        val = self.text[self.start : self.pos]
        self.tokens.append(Token(kind, self.start, val, self.start_line))
        self.line += val.count("\n") if kind in (TEXT, RAW_STRING, SPACE) else 0
        self.start = self.pos
        self.start_line = self.line

    def ignore(self) -> None:
        self.line += self.text.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def error(self, msg: str) -> bool:
        self.tokens.append(Token(ERROR, self.start, msg, self.start_line))
        return False

    def at_right_delim(self) -> tuple[bool, bool]:
        t = self.text
        if (
            self.pos + 1 < len(t)
            and t[self.pos] in _SPACE
            and t[self.pos + 1] == "-"
            and t.startswith("}}", self.pos + 2)
        ):
            return True, True
        return t.startswith("}}", self.pos), False

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch == "" or ch in _SPACE or ch in ".,|:)(" or self.text.startswith("}}", self.pos)

    # states
    def run(self) -> list[Token]:
        ok = True
        while ok:
            ok = self.lex_text()
            if ok:
                ok = self.lex_action()
        return self.tokens

    def lex_text(self) -> bool:
        t = self.text
        x = t.find("{{", self.pos)
        if x < 0:
            self.pos = len(t)
            if self.pos > self.start:
                self.emit(TEXT)
            self.tokens.append(Token(EOF, self.pos, "", self.line))
            return False
        self.pos = x
        trim = 0
        if len(t) > x + 3 and t[x + 2] == "-" and t[x + 3] in _SPACE:
            trim = len(t[self.start : x]) - len(t[self.start : x].rstrip(_SPACE))
        self.pos -= trim
        if self.pos > self.start:
            self.emit(TEXT)
        self.pos += trim
        self.ignore()
        return True

    def lex_action(self) -> bool:
        """At "{{": a comment, or the tokens of one action up to its "}}"."""
        t = self.text
        self.pos += 2
        trim = len(t) > self.pos + 1 and t[self.pos] == "-" and t[self.pos + 1] in _SPACE
        after = 2 if trim else 0
        if t.startswith("/*", self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment()
        self.emit(LEFT_DELIM)
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        while True:
            delim, trim_right = self.at_right_delim()
            if delim:
                if self.paren_depth:
                    return self.error("unclosed left paren")
                if trim_right:
                    self.pos += 2
                    self.ignore()
                self.pos += 2
                self.emit(RIGHT_DELIM)
                if trim_right:
                    self.pos += len(t[self.pos :]) - len(t[self.pos :].lstrip(_SPACE))
                    self.ignore()
                return True
            if not self.lex_inside():
                return False

    def lex_comment(self) -> bool:
        t = self.text
        self.pos += 2
        end = t.find("*/", self.pos)
        if end < 0:
            return self.error("unclosed comment")
        self.pos = end + 2
        delim, trim = self.at_right_delim()
        if not delim:
            return self.error("comment ends before closing delimiter")
        self.pos += 4 if trim else 2
        if trim:
            self.pos += len(t[self.pos :]) - len(t[self.pos :].lstrip(_SPACE))
        self.ignore()
        return True

    def lex_inside(self) -> bool:
        ch = self.peek()
        if ch == "":
            return self.error("unclosed action")
        if ch in _SPACE:
            return self.lex_space()
        self.pos += 1
        if ch == "=":
            self.emit(ASSIGN)
        elif ch == ":":
            if self.peek() != "=":
                return self.error("expected :=")
            self.pos += 1
            self.emit(DECLARE)
        elif ch == "|":
            self.emit(PIPE)
        elif ch == '"':
            return self.lex_quote()
        elif ch == "`":
            return self.lex_raw_quote()
        elif ch == "$":
            return self.lex_variable()
        elif ch == "'":
            return self.lex_char()
        elif ch == "." and not ("0" <= self.peek() <= "9" and self.peek() != ""):
            return self.lex_field_or_variable(FIELD)
        elif ch in "+-." or "0" <= ch <= "9":
            self.pos -= 1
            return self.lex_number()
        elif _is_alnum(ch):
            self.pos -= 1
            return self.lex_identifier()
        elif ch == "(":
            self.emit(LEFT_PAREN)
            self.paren_depth += 1
        elif ch == ")":
            self.emit(RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self.error("unexpected right paren U+0029 ')'")
        elif ch <= "\x7f" and ch.isprintable():
            self.emit(CHAR)
        else:
            return self.error(f"unrecognized character in action: {_unicode_name(ch)}")
        return True

    def lex_space(self) -> bool:
        t = self.text
        n = 0
        while self.peek() != "" and self.peek() in _SPACE:
            self.pos += 1
            n += 1
        # a trim-marked right delimiter starts with a space: leave it
        if t[self.pos - 1] in _SPACE and t.startswith("-}}", self.pos):
            self.pos -= 1
            if n == 1:
                return True
        self.emit(SPACE)
        return True

    def lex_identifier(self) -> bool:
        while _is_alnum(self.peek()):
            self.pos += 1
        word = self.text[self.start : self.pos]
        if not self.at_terminator():
            return self.error(f"bad character {_unicode_name(self.peek())}")
        if word in KEYWORDS and not (
            (word == "break" and not self.break_ok) or (word == "continue" and not self.continue_ok)
        ):
            self.emit(word)
        elif word in ("true", "false"):
            self.emit(BOOL)
        else:
            self.emit(IDENTIFIER)
        return True

    def lex_variable(self) -> bool:
        if self.at_terminator():
            self.emit(VARIABLE)
            return True
        return self.lex_field_or_variable(VARIABLE)

    def lex_field_or_variable(self, kind: str) -> bool:
        if self.at_terminator():
            self.emit(VARIABLE if kind == VARIABLE else ".")
            return True
        while _is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            return self.error(f"bad character {_unicode_name(self.peek())}")
        self.emit(kind)
        return True

    def lex_char(self) -> bool:
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt not in ("", "\n"):
                    continue
                ch = ""
            if ch in ("", "\n"):
                return self.error("unterminated character constant")
            if ch == "'":
                break
        self.emit(CHAR_CONSTANT)
        return True

    def lex_quote(self) -> bool:
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt not in ("", "\n"):
                    continue
                ch = ""
            if ch in ("", "\n"):
                return self.error("unterminated quoted string")
            if ch == '"':
                break
        self.emit(STRING)
        return True

    def lex_raw_quote(self) -> bool:
        end = self.text.find("`", self.pos)
        if end < 0:
            return self.error("unterminated raw quoted string")
        self.pos = end + 1
        self.emit(RAW_STRING)
        return True

    def lex_number(self) -> bool:
        if not self.scan_number():
            return self.error(f"bad number syntax: {_q(self.text[self.start : self.pos])}")
        if self.peek() in ("+", "-") and self.peek() != "":
            if not self.scan_number() or self.text[self.pos - 1] != "i":
                return self.error(f"bad number syntax: {_q(self.text[self.start : self.pos])}")
            self.emit(COMPLEX)
        else:
            self.emit(NUMBER)
        return True

    def accept(self, valid: str) -> bool:
        ch = self.peek()
        if ch != "" and ch in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if _is_alnum(self.peek()):
            self.pos += 1
            return False
        return True


def _q(s: str) -> str:
    from portique.cli.gotemplate.gofmt import quote

    return quote(s)


def _unicode_name(ch: str) -> str:
    """Go's %#U: U+0021 '!'."""
    if ch == "":
        return "U+FFFFFFFFFFFFFFFF"
    o = ord(ch)
    return f"U+{o:04X} '{ch}'" if ch.isprintable() else f"U+{o:04X}"


def lex(text: str, *, break_ok: bool = True, continue_ok: bool = True) -> list[Token]:
    """All tokens of `text`, ending with EOF or an ERROR token."""
    return _Lexer(text, break_ok, continue_ok).run()
