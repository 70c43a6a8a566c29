"""`portique version [-f FORMAT]`.

The output is a Go template over Docker's version structure (`.Client.Version`,
`.Client.APIVersion`, `.Server.Version`, `.Server.Components`, ...), laid out by
a tab writer as docker/cli does; `--format` replaces the default template and
`--format json` prints the structure as JSON. portique has no daemon: the
"server" is the engine in this process.
"""

from __future__ import annotations

import argparse
import platform
import sys
from typing import TYPE_CHECKING, Any

from portique import API_VERSION, __version__

if TYPE_CHECKING:
    from portique.engine.engine import Engine

# Our own wording of Docker's layout: one "Key:<TAB>value" line per field.
DEFAULT_TEMPLATE = """\
{{- with .Client -}}
Client:{{with .Platform}} {{.Name}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}
 Python version:\t{{.GoVersion}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}
{{- with .Server}}

Server:{{with .Platform.Name}} {{.}}{{end}}
{{- range .Components}}
 {{.Name}}:
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Kernel version:\t{{index .Details "KernelVersion"}}
{{- end}}
{{- end}}"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--format", default="", help="format output using a Go template, or 'json'"
    )


def version_info() -> Any:
    """Docker's versionInfo: Client and Server, as Go structs for the template."""
    from portique.cli.gotemplate import GoList, GoMap, Struct

    arch = "amd64" if platform.machine() == "x86_64" else platform.machine()
    python = f"python{platform.python_version()}"
    kernel = platform.release()
    client = {
        "Platform": Struct("*system.platformInfo", {"Name": "portique"}),
        "Version": __version__,
        "APIVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": python,
        "Os": "linux",
        "Arch": arch,
        "BuildTime": "",
        "Context": "default",
    }
    details = GoMap(
        {"ApiVersion": API_VERSION, "Arch": arch, "Os": "linux", "KernelVersion": kernel},
        "string",
        "string",
    )
    engine = Struct(
        "system.ComponentVersion", {"Name": "Engine", "Version": __version__, "Details": details}
    )
    server = {
        "Platform": Struct("client.PlatformInfo", {"Name": "portique (daemonless)"}),
        "Version": __version__,
        "APIVersion": API_VERSION,
        "MinAPIVersion": "",
        "Os": "linux",
        "Arch": arch,
        "Components": GoList([engine], "system.ComponentVersion"),
        "GitCommit": "",
        "GoVersion": python,
        "KernelVersion": kernel,
        "Experimental": False,
        "BuildTime": "",
    }
    as_json = {
        "Client": {
            "Platform": {"Name": "portique"},
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "DefaultAPIVersion": API_VERSION,
            "GoVersion": python,
            "Os": "linux",
            "Arch": arch,
            "Context": "default",
        },
        "Server": {
            "Platform": {"Name": "portique (daemonless)"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": dict(details)}],
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "Os": "linux",
            "Arch": arch,
            "GoVersion": python,
            "KernelVersion": kernel,
        },
    }
    return Struct(
        "system.versionInfo",
        {
            "Client": Struct("system.clientVersion", client),
            "Server": Struct("*system.serverVersion", server),
        },
        json=lambda: _ordered(as_json),
    )


def _ordered(value: Any) -> Any:
    """JSON objects in field order (Go marshals structs so), maps ("Details") sorted."""
    from portique.cli.gotemplate import Struct

    if isinstance(value, dict):
        fields = {k: v if k == "Details" else _ordered(v) for k, v in value.items()}
        return Struct("", fields)
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker import templates
    from portique.cli.gotemplate import ExecError

    fmt = args.format or DEFAULT_TEMPLATE
    if fmt == "json":
        fmt = "{{json .}}"
    tmpl = templates.parse(fmt, name="version", syntax_exit=64, prefix="template parsing error: ")
    out: list[str] = []
    error = None
    try:
        tmpl.execute_into(version_info(), out)
    except ExecError as exc:
        error = exc
    # docker/cli writes what the template produced, then a newline, through a tab writer
    sys.stdout.write(templates.tabwrite("".join(out) + "\n", minwidth=20, padding=1))
    if error is not None:
        raise templates.TemplateError(str(error))
    return 0
