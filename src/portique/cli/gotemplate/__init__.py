"""Go's text/template, as Docker's `--format` uses it: lexer, parser, executor and fmt.

Written from the documentation of Go's text/template and fmt packages. Data is
made of Python values standing for Go ones (values.py): a Struct for a Go
struct (a missing field is an error), a dict for a map (a missing key prints
"<no value>").

    from portique.cli.gotemplate import Template
    Template("{{range .}}{{printf \\"%-5s|\\" .}}{{end}}").execute(["a", "b"])
"""

from portique.cli.gotemplate.exec import ExecError as ExecError
from portique.cli.gotemplate.exec import Template as Template
from portique.cli.gotemplate.values import MISSING as MISSING
from portique.cli.gotemplate.values import GoError as GoError
from portique.cli.gotemplate.values import GoList as GoList
from portique.cli.gotemplate.values import GoMap as GoMap
from portique.cli.gotemplate.values import Method as Method
from portique.cli.gotemplate.values import NilPointer as NilPointer
from portique.cli.gotemplate.values import Struct as Struct
from portique.cli.gotemplate.values import Typed as Typed

__all__ = [
    "MISSING",
    "ExecError",
    "GoError",
    "GoList",
    "GoMap",
    "Method",
    "NilPointer",
    "Struct",
    "Template",
    "Typed",
]
