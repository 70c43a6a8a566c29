"""JSON nested deeper than Python's recursion limit, from every hostile
source (found by tests/fuzz): json.loads raises RecursionError, not
ValueError, and each decoder must turn it into its own one-line error."""

from __future__ import annotations

import io
import tarfile

import pytest

from portique.build.dockerfile import parse
from portique.errors import InvalidArgument, PortiqueError
from portique.image.registry.auth import parse_token_response
from portique.image.registry.errors import describe
from portique.oci import image as oci
from portique.oci.runtime import parse_config_bytes

DEEP = b"[" * 5000


def test_manifest_and_config() -> None:
    with pytest.raises(oci.InvalidManifest, match="is not valid JSON"):
        oci.parse_manifest(DEEP)
    with pytest.raises(InvalidArgument, match="is not valid JSON"):
        oci.parse_image_config(DEEP)


def test_runtime_config_json() -> None:
    with pytest.raises(InvalidArgument, match=r"^config.json: not valid JSON"):
        parse_config_bytes(DEEP)


def test_dockerfile_json_form_falls_back_to_shell_form() -> None:
    df = parse("FROM b\nCMD " + "[" * 5000 + "\n")
    assert df.instructions[1].exec_form is None


def test_registry_bodies() -> None:
    assert describe(500, DEEP)[1].startswith("[[[[")
    with pytest.raises(PortiqueError, match="token response is not JSON"):
        parse_token_response(DEEP, "registry.example")


def test_archive_manifest_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from portique.image.load import load

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(DEEP)
        t.addfile(info, io.BytesIO(DEEP))

    from portique.image.store import ContentStore

    class NoImages:
        root = tmp_path
        store = ContentStore(tmp_path)

    with pytest.raises(InvalidArgument, match=r"'manifest.json' is not valid JSON"):
        load(NoImages(), io.BytesIO(buf.getvalue()))  # type: ignore[arg-type]


def test_runtime_cli_run(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from portique.cli.runc import main as rtmain

    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_bytes(DEEP)
    code = rtmain.main(["--root", str(tmp_path / "state"), "run", "-b", str(bundle), "x"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("portique-runtime: config.json: not valid JSON: maximum recursion")
    assert err.count("\n") == 1
