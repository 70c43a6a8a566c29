"""pull -> save -> load -> push -> pull keeps every digest (both archive formats),
and an imported image can be pushed and pulled back."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from portique.image.images import Images
from portique.image.load import load
from portique.image.pull import pull
from portique.image.push import push_image
from portique.image.registry.client import RegistryClient
from portique.image.save import save
from support import oci_build as ob
from support.registry import Registry

MakeClient = Callable[..., RegistryClient]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_pull_save_load_push_pull(
    fmt: str,
    registry_token: Registry,
    registry_plain: Registry,
    make_client: MakeClient,
    tmp_path: Path,
    repo_name: str,
) -> None:
    img = ob.whiteout_image()
    ob.push_image(registry_token, repo_name, "v1", img)
    src = f"{registry_token.host}/{repo_name}:v1"
    dest = f"{registry_plain.host}/{repo_name}-{fmt}:v1"
    first, second, third = (Images(tmp_path / n) for n in ("a", "b", "c"))
    try:
        pulled = pull(first, src, client=make_client(registry_token))
        archive = io.BytesIO()
        save(first, [src], archive, format=fmt)
        archive.seek(0)
        load(second, archive)
        loaded = second.resolve(src)
        assert (loaded.id, loaded.manifest_digest, loaded.layers) == (
            pulled.id,
            pulled.manifest_digest,
            pulled.layers,
        )
        second.tag(src, dest)
        pushed = push_image(second, dest, client=make_client(registry_plain))
        assert pushed.digest == img.manifest_digest
        back = pull(third, dest, client=make_client(registry_plain))
        assert (back.id, back.manifest_digest, back.layers) == (
            pulled.id,
            img.manifest_digest,
            img.diff_ids,
        )
    finally:
        for images in (first, second, third):
            images.close()


def test_imported_image_push_and_pull(
    registry_plain: Registry, make_client: MakeClient, tmp_path: Path, repo_name: str
) -> None:
    from portique.image.importer import import_rootfs

    rootfs = ob.busybox_tar().tar_bytes()
    name = f"{registry_plain.host}/{repo_name}-imported:v1"
    first, second = Images(tmp_path / "a"), Images(tmp_path / "b")
    try:
        rec = import_rootfs(first, io.BytesIO(rootfs), name, changes=['CMD ["/bin/sh"]'])
        result = push_image(first, name, client=make_client(registry_plain))
        assert result.digest == rec.manifest_digest
        back = pull(second, name, client=make_client(registry_plain))
        assert (back.id, back.layers) == (rec.id, rec.layers)
        assert back.config["config"]["Cmd"] == ["/bin/sh"]
    finally:
        first.close()
        second.close()
