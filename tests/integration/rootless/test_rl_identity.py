"""A rootless engine's identity and state: the user is root inside and only
itself outside, its subordinate range maps the other ids, a user without one
gets a single-id mapping and one clear error for images it cannot hold, and
root's engine and the user's never see each other's objects."""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from pathlib import Path

from support.engine_cli import Portique
from support.rootless_cli import TEST_USER, UserPortique, busybox_tar, subuid_start, wait_for


def _map(text: str) -> list[list[int]]:
    return [[int(x) for x in line.split()] for line in text.strip().splitlines()]


def test_the_user_is_root_inside_and_its_range_maps_the_rest(upq: UserPortique) -> None:
    out = upq.ok(
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; echo --; cat /proc/self/gid_map",
    )
    first, _, rest = out.partition("\n")
    assert first == "0"
    uids, _, gids = rest.partition("--\n")
    start = subuid_start(TEST_USER)
    assert _map(uids) == [[0, upq.uid, 1], [1, start, 65536]]
    assert _map(gids)[0] == [0, upq.gid, 1]


def test_a_container_process_is_the_user_on_the_host(upq: UserPortique) -> None:
    cid = upq.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
    try:
        pid = int(upq.ok("inspect", "-f", "{{.State.Pid}}", cid))
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == [str(upq.uid)] * 4
        # root of its namespace, none of the host's capabilities
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
    finally:
        upq.ok("rm", "-f", cid)


def test_state_lives_under_the_users_xdg_dirs(upq: UserPortique) -> None:
    st = os.stat(upq.root)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (upq.uid, 0o700)
    assert (upq.root / "portique.db").is_file()
    assert os.stat(upq.runroot).st_uid == upq.uid
    pid = upq.pause_pid()
    assert pid is not None
    assert Path(f"/proc/{pid}/status").read_text().count(f"\t{upq.uid}\t") >= 1


def test_runtime_dir_falls_back_to_tmp_with_mode_0700() -> None:
    engine = UserPortique.make(TEST_USER, "norun", runtime_dir=False)
    try:
        assert engine.ok("images", "-q") == ""
        st = os.stat(f"/tmp/portique-{engine.uid}")
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (engine.uid, 0o700)
    finally:
        engine.close()


def test_single_id_mapping_runs_root_owned_images(nosub: UserPortique) -> None:
    out = nosub.ok("run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/uid_map")
    assert _map(out) == [[0, nosub.uid, 1]]


def test_single_id_mapping_names_the_subuid_line_for_other_owners(nosub: UserPortique) -> None:
    tar_path = nosub.base / "owned.tar"
    data = nosub.base / "f"
    data.write_text("x\n")
    with tarfile.open(tar_path, "w") as tar:
        info = tar.gettarinfo(str(data), arcname="home/f")
        info.uid = info.gid = 1000
        with open(data, "rb") as f:
            tar.addfile(info, f)
    os.chmod(tar_path, 0o644)
    p = nosub("import", str(tar_path), "owned:1")
    assert p.returncode == 125
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "/etc/subuid" in p.stderr
    assert f"'{nosub.user}:100000:65536'" in p.stderr
    assert "Traceback" not in p.stderr
    assert nosub("image", "inspect", "owned:1").returncode != 0


def test_root_and_user_engines_never_see_each_other(upq: UserPortique, root_pq: Portique) -> None:
    mine = upq.ok("create", "--name", "side", "--network", "none", "busybox", "true").strip()
    theirs = root_pq.ok("create", "--name", "side", "--network", "none", "busybox", "true").strip()
    try:
        assert mine != theirs
        assert upq.ok("ps", "-aq", "--no-trunc").split() == [mine]
        assert mine not in root_pq.ok("ps", "-aq", "--no-trunc")
        root_pq.ok("tag", "busybox", "rootonly:1")
        assert "rootonly" not in upq.ok("images")
        upq.ok("tag", "busybox", "useronly:1")
        assert "useronly" not in root_pq.ok("images")
        # The user cannot open root's engine either.
        p = upq("--root", str(root_pq.root), "ps", "-a")
        assert p.returncode != 0
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        # Both run side by side at once.
        a = upq.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
        b = root_pq.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
        assert wait_for(lambda: "Up" in upq.ok("ps", "--filter", f"id={a}"))
        assert wait_for(lambda: "Up" in root_pq.ok("ps", "--filter", f"id={b}"))
        upq.ok("rm", "-f", a)
        root_pq.ok("rm", "-f", b)
    finally:
        upq("rm", "-f", mine)
        root_pq("rm", "-f", theirs)
        upq("rmi", "useronly:1")
        root_pq("rmi", "rootonly:1")


def test_info_says_rootless_and_its_helpers(upq: UserPortique, nosub: UserPortique) -> None:
    out = upq.ok("info")
    assert "  rootless\n" in out
    assert "IdMapping: newuidmap/newgidmap" in out
    assert "Network: slirp4netns (" in out
    assert "Cgroup Driver: none" in out
    assert f"Docker Root Dir: {upq.root}" in out
    assert "name=rootless" in upq.ok("info", "--format", "{{json .SecurityOptions}}")
    assert "IdMapping: single id" in nosub.ok("info")


def test_system_migrate_ends_the_namespace_and_the_next_command_makes_one() -> None:
    engine = UserPortique.make(TEST_USER, "migrate")
    try:
        assert engine.ok("images", "-q") == ""
        first = engine.pause_pid()
        assert first is not None
        engine.ok("network", "create", "mnet")
        slirp = int((engine.runroot / "netns" / "slirp.pid").read_text().split()[0])
        engine.ok("import", str(busybox_tar(engine.base)), "bb")
        cid = engine.ok("run", "-d", "--network", "none", "bb", "sleep", "300").strip()
        p = engine("system", "migrate")
        assert p.returncode != 0
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "running" in p.stderr
        engine.ok("rm", "-f", cid)
        engine.ok("system", "migrate")
        assert wait_for(lambda: not _alive(first) and not _alive(slirp))
        assert engine.ok("network", "ls", "--format", "{{.Name}}").split().count("mnet") == 1
        second = engine.pause_pid()
        assert second is not None
        assert second != first
    finally:
        engine.close()


def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text.rpartition(")")[2].split()[0] != "Z"


def test_a_users_command_never_goes_through_a_warm_server(upq: UserPortique) -> None:
    # PORTIQUE_WARM=auto would start (or use) a warm fork-server: never for a
    # user, whose engine lives in its own namespaces.
    env = dict(upq.env, PORTIQUE_WARM="auto")
    p = subprocess.run(
        upq.argv("run", "--rm", "--network", "none", "busybox", "id", "-u"),
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (p.returncode, p.stdout) == (0, "0\n"), p.stderr
    assert not list(upq.runroot.glob("warm*"))
