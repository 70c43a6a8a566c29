"""A missing object named by the user: Docker's words and exit status 1, for every verb.

Checked against docker CLI 28.2 on dockerd (Debian's docker.io): every verb
below exits 1 when the object is missing, `rm -f` and `network rm -f` say
nothing and exit 0, `rmi -f` says it and exits 0, `volume rm -f` prints the
name and exits 0, `inspect` prints `[]` first; `run` alone exits 125. The
daemon's prefix ("Error response from daemon: ") is Docker's transport;
portique, daemonless, says `Error: No such container: X` as `docker inspect`
does.
"""

from __future__ import annotations

import pytest

from support.engine_cli import Portique

NO_CONTAINER = "Error: No such container: nosuch\n"
NO_IMAGE = "Error: No such image: nosuch\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["rm", "nosuch"],
        ["stop", "nosuch"],
        ["kill", "nosuch"],
        ["restart", "nosuch"],
        ["pause", "nosuch"],
        ["unpause", "nosuch"],
        ["start", "nosuch"],
        ["wait", "nosuch"],
        ["logs", "nosuch"],
        ["exec", "nosuch", "true"],
        ["port", "nosuch"],
        ["top", "nosuch"],
        ["attach", "nosuch"],
        ["rename", "nosuch", "other"],
        ["export", "-o", "/dev/null", "nosuch"],
        ["cp", "nosuch:/etc/hostname", "/tmp/pq-missing-cp"],
        ["stats", "--no-stream", "nosuch"],
        ["explain", "nosuch"],
        ["container", "inspect", "nosuch"],
        ["container", "rm", "nosuch"],
    ],
    ids=lambda argv: "-".join(argv[:2]),
)
def test_missing_container(pq: Portique, argv: list[str]) -> None:
    r = pq(*argv)
    assert (r.returncode, r.stderr) == (1, NO_CONTAINER)


@pytest.mark.parametrize(
    "argv",
    [
        ["rmi", "nosuch"],
        ["image", "rm", "nosuch"],
        ["image", "inspect", "nosuch"],
        ["history", "nosuch"],
        ["tag", "nosuch", "other:tag"],
        ["save", "-o", "/dev/null", "nosuch"],
        ["create", "--pull", "never", "nosuch"],
    ],
    ids=lambda argv: "-".join(argv[:2]),
)
def test_missing_image(pq: Portique, argv: list[str]) -> None:
    r = pq(*argv)
    assert (r.returncode, r.stderr) == (1, NO_IMAGE)


def test_missing_volume(pq: Portique) -> None:
    for argv in (["volume", "rm", "nosuch"], ["volume", "inspect", "nosuch"]):
        r = pq(*argv)
        assert (r.returncode, r.stderr) == (1, "Error: No such volume: nosuch\n"), argv
    r = pq("volume", "rm", "-f", "nosuch")  # removed already: Docker prints the name
    assert (r.returncode, r.stdout, r.stderr) == (0, "nosuch\n", "")


def test_inspect_prints_the_empty_array_first(pq: Portique) -> None:
    r = pq("inspect", "nosuch")
    assert (r.returncode, r.stdout, r.stderr) == (1, "[]\n", "Error: No such object: nosuch\n")
    r = pq("inspect", "--type", "volume", "nosuch")
    assert (r.returncode, r.stderr) == (1, "Error: No such volume: nosuch\n")


def test_force_skips_or_warns_as_docker_does(pq: Portique) -> None:
    r = pq("rm", "-f", "nosuch")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = pq("rmi", "-f", "nosuch")
    assert (r.returncode, r.stderr) == (0, NO_IMAGE)


def test_several_names_go_on_past_a_missing_one(pq: Portique) -> None:
    pq.ok("create", "--name", "present", "busybox", "true")
    r = pq("rm", "nosuch", "present", "nosuch2")
    assert r.returncode == 1
    assert r.stdout == "present\n"
    assert r.stderr == NO_CONTAINER + "Error: No such container: nosuch2\n"
    assert pq("inspect", "present").returncode == 1  # it was removed


def test_run_keeps_dockers_125(pq: Portique) -> None:
    r = pq("run", "--rm", "--pull", "never", "nosuch")
    assert (r.returncode, r.stderr) == (125, "portique: no such image: nosuch\n")
    r = pq("run", "--rm", "--network", "container:nosuch", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "portique: no such container: nosuch\n")
