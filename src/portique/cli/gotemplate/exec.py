"""Executing a parsed template, as text/template's exec.go does.

Errors read as Go's: `template: NAME:LINE:COL: executing "NAME" at <NODE>: MSG`,
where COL is the byte offset of the node in its line. A missing struct field is
an error ("can't evaluate field X in type T"); a missing map key gives "<no
value>" (or an error with missingkey=error, or the zero value with
missingkey=zero).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portique.cli.gotemplate import funcs as F
from portique.cli.gotemplate import nodes as P
from portique.cli.gotemplate.gofmt import print_value, quote, sprint
from portique.cli.gotemplate.parse import ParseError, parse
from portique.cli.gotemplate.values import (
    MISSING,
    GoError,
    GoMap,
    Method,
    NilPointer,
    Struct,
    Typed,
    is_true,
    kind,
    type_name,
)

__all__ = ["ExecError", "Template"]

_NO_FINAL: Any = object()  # Go's missingVal: no value piped in from a previous command
_MAX_DEPTH = 200  # nested {{template}} calls; Go allows 100000, Python's stack does not


class ExecError(Exception):
    """A template that failed while executing; str() is Go's message."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template: `Template(text, funcs=...)` then `execute(data)`.

    `funcs` adds functions to Go's builtins (name -> values.Method).
    `missingkey` is Go's option: "default" (<no value>), "zero" or "error".
    """

    def __init__(
        self,
        text: str,
        *,
        name: str = "",
        funcs: Mapping[str, Method] | None = None,
        missingkey: str = "default",
    ) -> None:
        self.name = name
        self.text = text
        self.funcs: dict[str, Method] = dict(F.BUILTINS)
        if funcs:
            self.funcs.update(funcs)
        self.missingkey = missingkey
        try:
            self.trees = parse(name, text, self.funcs)
        except ParseError as exc:
            raise ExecError(str(exc)) from None

    def with_options(
        self, *, funcs: Mapping[str, Method] | None = None, missingkey: str | None = None
    ) -> Template:
        """A copy sharing the parsed trees, with other functions or missingkey option."""
        other = object.__new__(Template)
        other.name, other.text, other.trees = self.name, self.text, self.trees
        other.funcs = dict(self.funcs)
        if funcs:
            other.funcs.update(funcs)
        other.missingkey = missingkey or self.missingkey
        return other

    def execute(self, data: Any) -> str:
        out: list[str] = []
        self.execute_into(data, out)
        return "".join(out)

    def execute_into(self, data: Any, out: list[str]) -> None:
        """Execute, appending output to `out` (kept on error, as Go's partial writes)."""
        root = self.trees.get(self.name)
        if root is None:
            raise ExecError(
                f"template: {self.name}: {quote(self.name)} is an incomplete or empty template"
            )
        _State(self, self.name, out, [["$", data]], 0).walk(data, root)


def _byte_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogateescape"))


class _State:
    def __init__(
        self, tmpl: Template, name: str, out: list[str], variables: list[list[Any]], depth: int
    ) -> None:
        self.tmpl = tmpl
        self.name = name
        self.out = out
        self.vars = variables
        self.depth = depth
        self.node: P.Node | None = None

    # errors
    def errorf(self, msg: str) -> Any:
        node = self.node
        if node is None:
            raise ExecError(f"template: {self.name}: {msg}")
        text = self.tmpl.text[: node.pos]
        nl = text.rfind("\n")
        col = _byte_len(text) if nl < 0 else _byte_len(text[nl + 1 :])
        line = 1 + text.count("\n")
        where = f"{self.tmpl.name}:{line}:{col}"
        raise ExecError(f"template: {where}: executing {quote(self.name)} at <{node}>: {msg}")

    def at(self, node: P.Node) -> None:
        self.node = node

    # variables
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        return self.errorf(f"undefined variable: {name}")

    # walking
    def walk(self, dot: Any, node: P.Node) -> None:
        self.at(node)
        if isinstance(node, P.ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, P.TextNode):
            self.out.append(node.text)
        elif isinstance(node, P.ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, value)
        elif isinstance(node, P.BranchNode):
            if node.keyword == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_with(dot, node)
        elif isinstance(node, P.ContinueNode):
            raise _Continue
        elif isinstance(node, P.BreakNode):
            raise _Break
        elif isinstance(node, P.TemplateNode):
            self.walk_template(dot, node)
        else:
            self.errorf(f"unknown node: {node}")

    def print_value(self, node: P.Node, value: Any) -> None:
        self.at(node)
        if value is MISSING or value is None:
            self.out.append("<no value>")
            return
        if kind(value) == "func":
            self.errorf(f"can't print {node} of type {type_name(value)}")
        if isinstance(value, Struct) and value.is_pointer:
            value = Struct(
                value.type_name[1:], value.fields, value.methods, stringer=value.stringer
            )
        self.out.append(print_value(value))

    def walk_if_with(self, dot: Any, node: P.BranchNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if is_true(value):
                self.walk(value if node.keyword == "with" else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: P.BranchNode) -> None:
        self.at(node)
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if isinstance(value, Struct) and value.is_pointer:
                value = Struct(value.type_name[1:], value.fields, value.methods)
            inner = len(self.vars)
            decl = node.pipe.decl
            items: list[tuple[Any, Any]]
            if isinstance(value, list | tuple):
                items = list(enumerate(value))
            elif isinstance(value, Mapping):
                items = F.sorted_items(value)
            elif isinstance(value, int | Typed) and kind(value) in ("int", "uint"):
                n = int(value.value if isinstance(value, Typed) else value)
                if len(decl) > 1:
                    self.errorf(f"can't use {sprint(value)} to iterate over more than one variable")
                items = [(i, i) for i in range(n)]
            elif value is MISSING or value is None or isinstance(value, NilPointer):
                items = []
            else:
                self.errorf(f"range can't iterate over {sprint(value)}")
            for index, elem in items:
                self.set_range_vars(node.pipe, index, elem)
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                except _Break:
                    return
                finally:
                    del self.vars[inner:]
            if not items and node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def set_range_vars(self, pipe: P.PipeNode, index: Any, elem: Any) -> None:
        decl = pipe.decl
        if not decl:
            return
        if pipe.is_assign:
            if len(decl) > 1:
                self.set_var(decl[0].ident[0], index)
                self.set_var(decl[1].ident[0], elem)
            else:
                self.set_var(decl[0].ident[0], elem)
            return
        self.vars[-1][1] = elem
        if len(decl) > 1:
            self.vars[-2][1] = index

    def walk_template(self, dot: Any, node: P.TemplateNode) -> None:
        self.at(node)
        tree = self.tmpl.trees.get(node.name)
        if tree is None:
            self.errorf(f"template {quote(node.name)} not defined")
        if self.depth >= _MAX_DEPTH:
            self.errorf(f"exceeded maximum template depth ({_MAX_DEPTH})")
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        state = _State(self.tmpl, node.name, self.out, [["$", value]], self.depth + 1)
        state.walk(value, tree)  # type: ignore[arg-type]

    # evaluation
    def eval_pipeline(self, dot: Any, pipe: P.PipeNode | None) -> Any:
        if pipe is None:
            return MISSING
        self.at(pipe)
        value = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:  # a nil interface unwraps to nothing
                value = MISSING
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: list[P.Node], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: P.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, P.FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, P.ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, P.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, P.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, P.VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, P.BoolNode):
            return first.value
        if isinstance(first, P.NilNode):
            return self.errorf("nil is not a command")
        if isinstance(first, P.DotNode):
            return dot
        if isinstance(first, P.NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, P.StringNode):
            return first.text
        return self.errorf(f"can't evaluate command {quote(str(first))}")

    def ideal_constant(self, n: P.NumberNode) -> Any:
        self.at(n)
        if n.as_complex is not None:
            return n.as_complex
        text = n.text
        is_hex_int = text[:2] in ("0x", "0X") and not any(c in text for c in "pP")
        if (
            n.as_float is not None
            and not is_hex_int
            and not n.is_char
            and any(c in text for c in ".eEpP")
        ):
            return n.as_float
        if n.as_int is not None:
            return n.as_int
        if n.as_uint is not None:
            return self.errorf(f"{text} overflows int")
        return MISSING

    def eval_chain(self, dot: Any, chain: P.ChainNode, args: list[P.Node], final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, P.NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.field, args, final)

    def eval_variable(self, dot: Any, var: P.VariableNode, args: list[P.Node], final: Any) -> Any:
        self.at(var)
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: P.Node,
        ident: list[str],
        args: list[P.Node],
        final: Any,
    ) -> Any:
        static: str | None = None
        for name in ident[:-1]:
            receiver, static = self.eval_field(dot, name, node, [], _NO_FINAL, receiver, static)
        return self.eval_field(dot, ident[-1], node, args, final, receiver, static)[0]

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: P.Node,
        args: list[P.Node],
        final: Any,
        receiver: Any,
        static: str | None,
    ) -> tuple[Any, str | None]:
        """Evaluate .name on receiver; also return the static type of the result
        ("interface {}" for elements of untyped maps and slices)."""
        if receiver is MISSING:
            if self.tmpl.missingkey == "error":
                self.errorf(f"nil data; no entry for key {quote(name)}")
            return MISSING, None
        if receiver is None:  # a nil interface value
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        typ = static or type_name(receiver)
        methods = getattr(receiver, "methods", None)
        if methods and name in methods:
            return self.eval_call(dot, methods[name], False, node, name, args, final), None
        has_args = len(args) > 1 or final is not _NO_FINAL
        if isinstance(receiver, Struct):
            if name in receiver.fields:
                if name[:1].islower():
                    self.errorf(f"{name} is an unexported field of struct type {typ}")
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return receiver.fields[name], None
        elif isinstance(receiver, Mapping):
            key_type = receiver.key if isinstance(receiver, GoMap) else "string"
            if key_type == "string":
                if has_args:
                    self.errorf(f"{name} is not a method but has arguments")
                elem = receiver.elem if isinstance(receiver, GoMap) else "interface {}"
                if name in receiver:
                    return receiver[name], elem if elem == "interface {}" else None
                if self.tmpl.missingkey == "zero":
                    return F.zero_value(elem), None
                if self.tmpl.missingkey == "error":
                    self.errorf(f"map has no entry for key {quote(name)}")
                return MISSING, None
        elif isinstance(receiver, NilPointer):
            self.errorf(f"nil pointer evaluating {typ}.{name}")
        return self.errorf(f"can't evaluate field {name} in type {typ}"), None

    def eval_function(
        self, dot: Any, node: P.IdentifierNode, cmd: P.Node, args: list[P.Node], final: Any
    ) -> Any:
        self.at(node)
        fn = self.tmpl.funcs.get(node.ident)
        if fn is None:
            self.errorf(f"{quote(node.ident)} is not a defined function")
        return self.eval_call(dot, fn, node.ident in F.BUILTINS, cmd, node.ident, args, final)  # type: ignore[arg-type]

    def eval_call(
        self,
        dot: Any,
        fn: Method,
        builtin: bool,
        node: P.Node,
        name: str,
        args: list[P.Node],
        final: Any,
    ) -> Any:
        args = args[1:] if args else []
        num_in = len(args) + (final is not _NO_FINAL)
        num_fixed = len(fn.params)
        if fn.variadic is not None:
            if num_in < num_fixed:
                self.errorf(
                    f"wrong number of args for {name}: want at least {num_fixed} got {len(args)}"
                )
        elif num_in != num_fixed:
            self.errorf(f"wrong number of args for {name}: want {num_fixed} got {num_in}")
        if builtin and name in ("and", "or") and self.tmpl.funcs.get(name) is F.BUILTINS[name]:
            value: Any = MISSING
            for arg in args:
                value = self.eval_arg(dot, "reflect.Value", arg)
                if is_true(value) == (name == "or"):
                    return value
            if final is not _NO_FINAL:
                value = final
            return value
        argv = []
        for i, arg in enumerate(args):
            ptype = fn.params[i] if i < num_fixed else fn.variadic
            argv.append(self.eval_arg(dot, ptype, arg))
        if final is not _NO_FINAL:
            ptype = fn.params[num_in - 1] if num_in - 1 < num_fixed else fn.variadic
            argv.append(self.validate_type(final, ptype))
        try:
            result = fn.fn(*argv)
        except GoError as exc:
            self.at(node)
            self.errorf(f"error calling {name}: {exc}")
        except RecursionError:
            self.at(node)
            self.errorf(f"error calling {name}: too deep")
        return result

    def validate_type(self, value: Any, typ: str | None) -> Any:
        if typ is None or typ == "reflect.Value":
            return value
        if value is MISSING or value is None:
            if typ == "interface {}" or typ[:1] in "*[" or typ.startswith("map["):
                return None if typ == "interface {}" else F.zero_value(typ)
            return self.errorf(f"invalid value; expected {typ}")
        if typ == "interface {}" or F.assignable(value, typ):
            return value
        if isinstance(value, Struct) and value.is_pointer and value.type_name[1:] == typ:
            return value
        return self.errorf(f"wrong type for value; expected {typ}; got {type_name(value)}")

    def eval_arg(self, dot: Any, typ: str | None, n: P.Node) -> Any:
        self.at(n)
        if isinstance(n, P.NilNode):
            if (
                typ is None
                or typ in ("interface {}", "reflect.Value")
                or typ[:1] in "*["
                or typ.startswith("map[")
            ):
                return MISSING if typ in (None, "reflect.Value") else F.zero_value(typ)
            return self.errorf(f"cannot assign nil to {typ}")
        if isinstance(n, P.DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, P.FieldNode):
            return self.validate_type(
                self.eval_field_chain(dot, dot, n, n.ident, [n], _NO_FINAL), typ
            )
        if isinstance(n, P.VariableNode):
            return self.validate_type(self.eval_variable(dot, n, [], _NO_FINAL), typ)
        if isinstance(n, P.PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, P.IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, [], _NO_FINAL), typ)
        if isinstance(n, P.ChainNode):
            return self.validate_type(self.eval_chain(dot, n, [], _NO_FINAL), typ)
        if typ is None or typ in ("interface {}", "reflect.Value"):
            if isinstance(n, P.BoolNode):
                return n.value
            if isinstance(n, P.NumberNode):
                return self.ideal_constant(n)
            if isinstance(n, P.StringNode):
                return n.text
        elif typ == "bool":
            if isinstance(n, P.BoolNode):
                return n.value
            self.errorf(f"expected bool; found {n}")
        elif typ == "string" or F.kind_of(typ) == "string":
            if isinstance(n, P.StringNode):
                return n.text if typ == "string" else Typed(n.text, typ)
            self.errorf(f"expected string; found {n}")
        elif F.kind_of(typ) == "int":
            if isinstance(n, P.NumberNode) and n.as_int is not None:
                return n.as_int if typ == "int" else Typed(n.as_int, typ)
            self.errorf(f"expected integer; found {n}")
        elif F.kind_of(typ) == "uint":
            if isinstance(n, P.NumberNode) and n.as_uint is not None:
                return Typed(n.as_uint, typ)
            self.errorf(f"expected unsigned integer; found {n}")
        elif F.kind_of(typ) == "float":
            if isinstance(n, P.NumberNode) and n.as_float is not None:
                return n.as_float
            self.errorf(f"expected float; found {n}")
        return self.errorf(f"can't handle {n} for arg of type {typ}")
