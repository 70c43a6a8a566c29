"""Go's fmt printing (Sprint, Sprintln, Sprintf) over the values of values.py.

Written from the fmt package documentation: verbs %v %+v %#v %T %% %t %b %c
%d %o %O %q %x %X %U %e %E %f %F %g %G %s %p, flags + - # 0 space, width and
precision (also `*` and explicit argument indexes [n]), and the error forms
%!verb(type=value), %!verb(MISSING), %!(EXTRA ...), %!(BADWIDTH), %!(BADPREC),
%!(BADINDEX), %!(NOVERB).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from portique.cli.gotemplate.values import (
    MISSING,
    NilPointer,
    Struct,
    Typed,
    kind,
    type_name,
)

__all__ = ["quote", "quote_rune", "sprint", "sprintf", "sprintln"]


class _Flags:
    __slots__ = ("minus", "plus", "plus_v", "prec", "sharp", "sharp_v", "space", "wid", "zero")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False
        self.wid: int | None = None
        self.prec: int | None = None


_PLAIN = _Flags()


# ---------------------------------------------------------------- quoting


def _is_print(ch: str) -> bool:
    # strconv.IsPrint: letters, marks, numbers, punctuation, symbols and U+0020.
    import unicodedata

    if ch == " ":
        return True
    return unicodedata.category(ch)[0] in "LMNPS"


_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _escape(ch: str, quote_ch: str, ascii_only: bool) -> str:
    if ch == quote_ch or ch == "\\":
        return "\\" + ch
    if ch in _ESC:
        return _ESC[ch]
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not valid UTF-8 (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if (ascii_only and o >= 0x80) or not _is_print(ch):
        if o < 0x80:
            return f"\\x{o:02x}"
        if o < 0x10000:
            return f"\\u{o:04x}"
        return f"\\U{o:08x}"
    return ch


def quote(s: str, *, ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteToASCII)."""
    return '"' + "".join(_escape(c, '"', ascii_only) for c in s) + '"'


def quote_rune(r: int, *, ascii_only: bool = False) -> str:
    """strconv.QuoteRune: invalid code points become U+FFFD."""
    if r < 0 or r > 0x10FFFF or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    return "'" + _escape(chr(r), "'", ascii_only) + "'"


def _can_backquote(s: str) -> bool:
    return all(c == "\t" or (c >= " " and c not in "`\x7f\ufeff") for c in s)


# ---------------------------------------------------------------- padding


def _pad(s: str, f: _Flags) -> str:
    if not f.wid or len(s) >= f.wid:
        return s
    n = f.wid - len(s)
    if f.minus:
        return s + " " * n
    return ("0" if f.zero else " ") * n + s


def _pad_spaces(s: str, f: _Flags) -> str:
    zero = f.zero
    f.zero = False
    try:
        return _pad(s, f)
    finally:
        f.zero = zero


# ---------------------------------------------------------------- numbers

_LDIGITS = "0123456789abcdefx"
_UDIGITS = "0123456789ABCDEFX"


def _fmt_integer(v: int, base: int, verb: str, upper: bool, f: _Flags) -> str:
    negative = v < 0
    u = -v if negative else v
    prec = 0
    if f.prec is not None:
        prec = f.prec
        if prec == 0 and u == 0:
            return " " * (f.wid or 0)
    elif f.zero and f.wid is not None:
        prec = f.wid
        if negative or f.plus or f.space:
            prec -= 1
    digits = _UDIGITS if upper else _LDIGITS
    out = ""
    while True:
        out = digits[u % base] + out
        u //= base
        if not u:
            break
    out = out.rjust(prec, "0")
    if f.sharp:
        if base == 2:
            out = "0b" + out
        elif base == 8 and out[0] != "0":
            out = "0" + out
        elif base == 16:
            out = "0" + digits[16] + out
    if verb == "O":
        out = "0o" + out
    if negative:
        out = "-" + out
    elif f.plus:
        out = "+" + out
    elif f.space:
        out = " " + out
    return _pad_spaces(out, f)


def _fmt_unicode(v: int, f: _Flags) -> str:
    prec = f.prec if f.prec is not None and f.prec > 4 else 4
    out = "U+" + f"{v & 0xFFFFFFFFFFFFFFFF:X}".rjust(prec, "0")
    if f.sharp and 0 <= v <= 0x10FFFF and not 0xD800 <= v <= 0xDFFF and _is_print(chr(v)):
        out += " '" + chr(v) + "'"
    return _pad_spaces(out, f)


def _fmt_char(v: int, f: _Flags) -> str:
    if v < 0 or v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
        v = 0xFFFD
    return _pad(chr(v), f)


def _int_verb(v: int, verb: str, f: _Flags, unsigned: bool, tname: str) -> str:
    if verb in "dv":
        if verb == "v" and unsigned and f.sharp_v:
            sharp = f.sharp
            f.sharp = True
            try:
                return _fmt_integer(v, 16, "x", False, f)
            finally:
                f.sharp = sharp
        return _fmt_integer(v, 10, verb, False, f)
    if verb == "b":
        return _fmt_integer(v, 2, verb, False, f)
    if verb in "oO":
        return _fmt_integer(v, 8, verb, False, f)
    if verb == "x":
        return _fmt_integer(v, 16, verb, False, f)
    if verb == "X":
        return _fmt_integer(v, 16, verb, True, f)
    if verb == "c":
        return _fmt_char(v, f)
    if verb == "q":
        if 0 <= v <= 0x10FFFF:
            return _pad(quote_rune(v, ascii_only=f.plus), f)
    elif verb == "U":
        return _fmt_unicode(v, f)
    return _bad_verb(verb, tname, v)


def _decimal(v: float, sig: int | None) -> tuple[str, int]:
    """Digits (no trailing zeros) and decimal-point position of |v|, shortest or rounded."""
    text = repr(abs(v)) if sig is None else f"{abs(v):.{max(sig - 1, 0)}e}"
    mant, _, exp_s = text.partition("e")
    exp = int(exp_s) if exp_s else 0
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    if not digits:
        return "0", 1
    # position of the decimal point relative to the first significant digit
    lead = len(whole + frac) - len((whole + frac).lstrip("0"))
    dp = len(whole) - lead + exp
    return digits.rstrip("0") or "0", dp


def _fmt_e(digits: str, dp: int, prec: int, e: str) -> str:
    first, rest = digits[0], digits[1:]
    rest = rest[:prec].ljust(prec, "0")
    exp = dp - 1 if digits != "0" else 0
    sign = "-" if exp < 0 else "+"
    return f"{first}{'.' + rest if prec > 0 else ''}{e}{sign}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    if dp > 0:
        whole = (digits[:dp]).ljust(dp, "0")
        frac = digits[dp:]
    else:
        whole = "0"
        frac = "0" * (-dp) + digits
    frac = frac[:prec].ljust(prec, "0")
    return whole + ("." + frac if prec > 0 else "")


def format_float(v: float, verb: str, prec: int) -> str:
    """strconv.FormatFloat(v, verb, prec, 64) for verbs e E f F g G (prec -1 = shortest)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    neg = "-" if math.copysign(1.0, v) < 0 else ""
    low = verb.lower()
    if low == "e":
        if prec < 0:
            digits, dp = _decimal(v, None)
            prec = max(len(digits) - 1, 0)
        else:
            digits, dp = _decimal(v, prec + 1)
        return neg + _fmt_e(digits, dp, prec, "E" if verb == "E" else "e")
    if low == "f":
        if prec < 0:
            digits, dp = _decimal(v, None)
            return neg + _fmt_f(digits, dp, max(len(digits) - dp, 0))
        return neg + f"{abs(v):.{prec}f}"
    # g / G
    shortest = prec < 0
    if shortest:
        digits, dp = _decimal(v, None)
        prec = len(digits)
        eprec = 6
    else:
        prec = prec or 1
        digits, dp = _decimal(v, prec)
        eprec = prec
        if eprec > len(digits) and len(digits) >= dp:
            eprec = len(digits)
    exp = dp - 1
    if digits == "0":
        exp = 0
    if exp < -4 or exp >= eprec:
        prec = min(prec, len(digits))
        return neg + _fmt_e(digits, dp, prec - 1, "E" if verb == "G" else "e")
    if prec > dp:
        prec = len(digits)
    return neg + _fmt_f(digits, dp, max(prec - dp, 0))


def _fmt_float(v: float, verb: str, prec: int, f: _Flags) -> str:
    if f.prec is not None:
        prec = f.prec
    num = format_float(v, "g" if verb == "v" else verb, prec)
    if num[0] not in "+-":
        num = "+" + num
    if f.space and num[0] == "+" and not f.plus:
        num = " " + num[1:]
    if num[1] in "IN":  # Inf and NaN are never zero padded
        if num[1] == "N" and not f.space and not f.plus:
            num = num[1:]
        return _pad_spaces(num, f)
    if f.sharp:
        digits = 0
        if verb in "vgG":
            digits = 6 if prec == -1 else prec
        tail = ""
        body = num
        for i in range(1, len(num)):
            if num[i] in "eE":
                body, tail = num[:i], num[i:]
                break
        digits -= sum(1 for c in body[1:] if c.isdigit())
        if "." not in body:
            body += "."
        num = body + "0" * max(digits, 0) + tail
    if f.plus or num[0] != "+":
        if f.zero and f.wid is not None and f.wid > len(num):
            return num[0] + "0" * (f.wid - len(num)) + num[1:]
        return _pad(num, f)
    return _pad(num[1:], f)


def _float_verb(v: float, verb: str, f: _Flags, tname: str) -> str:
    if verb in "vgG":
        return _fmt_float(v, verb, -1, f)
    if verb in "eEfF":
        return _fmt_float(v, verb, 6, f)
    return _bad_verb(verb, tname, v)


def _complex_verb(v: complex, verb: str, f: _Flags) -> str:
    if verb not in "vbeEfFgG":
        return _bad_verb(verb, "complex128", v)
    wid = f.wid
    f.wid = None
    plus = f.plus
    try:
        real = _float_verb(v.real, verb, f, "float64")
        f.plus = True
        imag = _float_verb(v.imag, verb, f, "float64")
    finally:
        f.wid, f.plus = wid, plus
    return _pad("(" + real + imag + "i)", f)


# ---------------------------------------------------------------- strings


def _string_verb(s: str, verb: str, f: _Flags, tname: str) -> str:
    if verb == "v" and f.sharp_v:
        verb = "q"
    if verb in "vs":
        if f.prec is not None:
            s = s[: f.prec]
        return _pad(s, f)
    if verb in "xX":
        return _hex_bytes(s.encode("utf-8", "surrogateescape"), verb == "X", f)
    if verb == "q":
        if f.prec is not None:
            s = s[: f.prec]
        if f.sharp and _can_backquote(s):
            return _pad("`" + s + "`", f)
        return _pad(quote(s, ascii_only=f.plus), f)
    return _bad_verb(verb, tname, s)


def _hex_bytes(b: bytes, upper: bool, f: _Flags) -> str:
    if f.prec is not None:
        b = b[: f.prec]
    if not b:
        return " " * (f.wid or 0)
    digits = _UDIGITS if upper else _LDIGITS
    prefix = "0" + digits[16] if f.sharp else ""
    parts = [digits[c >> 4] + digits[c & 15] for c in b]
    out = (" " + prefix).join(prefix + p for p in parts) if f.space else prefix + "".join(parts)
    zero = f.zero
    f.zero = False
    try:
        return _pad(out, f)
    finally:
        f.zero = zero


# ---------------------------------------------------------------- values


def _bad_verb(verb: str, tname: str | None, value: Any) -> str:
    if tname is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({tname}={_print(value, 'v', _Flags(), 0)})"


def _map_items(m: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    def key(k: Any) -> tuple[int, Any]:
        if isinstance(k, bool):
            return (0, k)
        if isinstance(k, int | float):
            return (1, k)
        return (2, str(k))

    return sorted(m.items(), key=lambda kv: key(kv[0]))


def _print(arg: Any, verb: str, f: _Flags, depth: int) -> str:
    """Format one operand (printArg / printValue)."""
    if arg is None or arg is MISSING:
        if verb in "Tv" or depth > 0:
            return _pad("<nil>", f)
        return _bad_verb(verb, None, arg)
    if verb == "T":
        return _string_verb(type_name(arg), "s", f, "string")
    if verb == "p":
        if kind(arg) in ("ptr", "slice", "map", "func"):
            return _fmt_integer(0 if isinstance(arg, NilPointer) else id(arg), 16, "x", False, f)
        return _bad_verb(verb, type_name(arg), arg)
    if isinstance(arg, bool):
        return _pad("true" if arg else "false", f) if verb in "tv" else _bad_verb(verb, "bool", arg)
    if isinstance(arg, int):
        return _int_verb(arg, verb, f, False, "int")
    if isinstance(arg, float):
        return _float_verb(arg, verb, f, "float64")
    if isinstance(arg, complex):
        return _complex_verb(arg, verb, f)
    if isinstance(arg, str):
        return _string_verb(arg, verb, f, "string")
    if isinstance(arg, Typed):
        k = arg.kind
        if k in ("int", "uint"):
            return _int_verb(int(arg.value), verb, f, k == "uint", arg.type_name)
        if k == "float":
            return _float_verb(float(arg.value), verb, f, arg.type_name)
        if k == "bool":
            return (
                _pad("true" if arg.value else "false", f)
                if verb in "tv"
                else _bad_verb(verb, arg.type_name, arg)
            )
        return _string_verb(str(arg.value), verb, f, arg.type_name)
    if isinstance(arg, NilPointer):
        if f.sharp_v:
            return f"({arg.type_name})(nil)"
        return _pad("<nil>", f) if verb == "v" else _bad_verb(verb, arg.type_name, arg)
    if isinstance(arg, Struct):
        if arg.stringer is not None and verb in "vsxXq" and not f.sharp_v:
            return _print(arg.stringer(), verb, f, depth)
        return _print_struct(arg, verb, f, depth)
    if isinstance(arg, list | tuple):
        sep = ", " if f.sharp_v else " "
        inner = sep.join(_print(x, verb, f, depth + 1) for x in arg)
        return f"{type_name(arg)}{{{inner}}}" if f.sharp_v else f"[{inner}]"
    if isinstance(arg, Mapping):
        sep = ", " if f.sharp_v else " "
        inner = sep.join(
            f"{_print(k, verb, f, depth + 1)}:{_print(v, verb, f, depth + 1)}"
            for k, v in _map_items(arg)
        )
        return f"{type_name(arg)}{{{inner}}}" if f.sharp_v else f"map[{inner}]"
    if callable(arg):
        return _fmt_integer(id(arg), 16, "x", False, _flags_sharp())
    return _pad(str(arg), f)


def _flags_sharp() -> _Flags:
    f = _Flags()
    f.sharp = True
    return f


def _print_struct(s: Struct, verb: str, f: _Flags, depth: int) -> str:
    if s.is_pointer and depth > 0:
        # fmt prints the address of a pointer inside a composite value
        return _fmt_integer(id(s), 16, "x", False, _flags_sharp())
    sep = ", " if f.sharp_v else " "
    parts = []
    for name, value in s.fields.items():
        text = _print(value, verb, f, depth + 1)
        parts.append(f"{name}:{text}" if f.plus_v or f.sharp_v else text)
    body = "{" + sep.join(parts) + "}"
    if f.sharp_v:
        return ("&" if s.is_pointer else "") + s.type_name.lstrip("*") + body
    return ("&" if s.is_pointer else "") + body


# ---------------------------------------------------------------- entry points


def _is_string(arg: Any) -> bool:
    return isinstance(arg, str) or (isinstance(arg, Typed) and arg.kind == "string")


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = _is_string(arg)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(_print(arg, "v", _Flags(), 0))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: spaces always, and a newline."""
    return " ".join(_print(a, "v", _Flags(), 0) for a in args) + "\n"


def _arg_number(fmt: str, i: int, argnum: int, nargs: int) -> tuple[int, int, bool, bool]:
    """Parse "[n]" at fmt[i]: (argnum, new i, found, ok)."""
    if i >= len(fmt) or fmt[i] != "[":
        return argnum, i, False, True
    end = fmt.find("]", i + 1)
    if end < 0:
        return argnum, len(fmt), True, False
    text = fmt[i + 1 : end]
    if text.isdigit() and 1 <= int(text) <= nargs:
        return int(text) - 1, end + 1, True, True
    return argnum, end + 1, True, False


def _int_from_arg(args: tuple[Any, ...], argnum: int) -> tuple[int | None, int]:
    if argnum >= len(args):
        return None, argnum
    a = args[argnum]
    if isinstance(a, Typed) and a.kind in ("int", "uint"):
        a = int(a.value)
    if isinstance(a, int) and not isinstance(a, bool) and -1_000_000 <= a <= 1_000_000:
        return a, argnum + 1
    return None, argnum + 1


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf."""
    out: list[str] = []
    argnum = 0
    reordered = False
    i = 0
    n = len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        f = _Flags()
        while i < n and fmt[i] in "#0+- ":
            c = fmt[i]
            if c == "#":
                f.sharp = True
            elif c == "0":
                f.zero = not f.minus
            elif c == "+":
                f.plus = True
            elif c == "-":
                f.minus, f.zero = True, False
            else:
                f.space = True
            i += 1
        argnum, i, found, ok = _arg_number(fmt, i, argnum, len(args))
        reordered = reordered or found
        good_arg = ok
        if i < n and fmt[i] == "*":
            i += 1
            wid, argnum = _int_from_arg(args, argnum)
            if wid is None:
                out.append("%!(BADWIDTH)")
            else:
                f.wid = wid
                if wid < 0:
                    f.wid, f.minus, f.zero = -wid, True, False
            after_index = False
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > start:
                f.wid = int(fmt[start:i])
                if found:
                    good_arg = False  # "%[3]2d"
            after_index = found
        if i + 1 <= n and i < n and fmt[i] == ".":
            i += 1
            if after_index:
                good_arg = False
            argnum, i, found, ok = _arg_number(fmt, i, argnum, len(args))
            reordered = reordered or found
            good_arg = good_arg and ok
            if i < n and fmt[i] == "*":
                i += 1
                prec, argnum = _int_from_arg(args, argnum)
                if prec is None or prec < 0:
                    f.prec = None
                    if prec is None:
                        out.append("%!(BADPREC)")
                else:
                    f.prec = prec
                after_index = False
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                f.prec = int(fmt[start:i]) if i > start else 0
        if not after_index:
            argnum, i, found, ok = _arg_number(fmt, i, argnum, len(args))
            reordered = reordered or found
            good_arg = good_arg and ok
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good_arg:
            out.append(f"%!{verb}(BADINDEX)")
        elif argnum >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "w":
                verb = "v"
            if verb == "v":
                if f.sharp:
                    f.sharp, f.sharp_v = False, True
                if f.plus:
                    f.plus, f.plus_v = False, True
            out.append(_print(args[argnum], verb, f, 0))
            argnum += 1
    if not reordered and argnum < len(args):
        extra = ", ".join(
            "<nil>"
            if a is None or a is MISSING
            else f"{type_name(a)}={_print(a, 'v', _Flags(), 0)}"
            for a in args[argnum:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def print_value(value: Any) -> str:
    """The text an action prints for a value (fmt.Fprint of it)."""
    return _print(value, "v", _PLAIN, 0)
