"""Pure parts of explain: /proc parsers, nft DNAT rules, overlay options, host paths."""

from __future__ import annotations

from portique.engine.explain.gather import _host_path, _overlay, cap_names, errno_name
from portique.linux import procinfo
from portique.network.netview import parse_dnat

MOUNTINFO = (
    "102 60 0:50 / / rw,relatime shared:1 master:2 - overlay overlay "
    "rw,lowerdir=/s/2:/s/1,upperdir=/c/up,workdir=/c/work\n"
    "119 102 254:0 /var/lib/p/containers/abc/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw\n"
    "120 102 254:0 /home/a\\040b /data ro,nosuid - ext4 /dev/vda rw,discard\n"
    "121 102 0:5 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k\n"
)


def test_mountinfo() -> None:
    mounts = procinfo.parse_mountinfo(MOUNTINFO)
    root, hosts, data, keys = mounts
    assert (root.target, root.fstype, root.propagation) == (
        "/",
        "overlay",
        ("shared:1", "master:2"),
    )
    assert root.super_options == ("rw", "lowerdir=/s/2:/s/1", "upperdir=/c/up", "workdir=/c/work")
    assert _overlay(root.super_options) == (["/s/2", "/s/1"], "/c/up", "/c/work")
    assert (hosts.major, hosts.minor, hosts.root) == (254, 0, "/var/lib/p/containers/abc/hosts")
    assert data.root == "/home/a b"
    assert data.read_only
    assert not hosts.read_only
    assert keys.parent_id == 102
    assert keys.root == "/null"


def test_overlay_new_style_layers() -> None:
    opts = ("lowerdir+=/s/2", "lowerdir+=/s/1", "datadir+=/d", "upperdir=/u", "workdir=/w")
    assert _overlay(opts) == (["/s/2", "/s/1", "/d"], "/u", "/w")


def test_host_path_of_a_bind_mount() -> None:
    host = procinfo.parse_mountinfo(
        "1 0 254:0 / / rw - ext4 /dev/vda rw\n"
        "2 1 254:0 /srv /mnt/srv rw - ext4 /dev/vda rw\n"
        "3 1 0:40 / /tmp rw - tmpfs tmpfs rw\n"
    )
    (data,) = procinfo.parse_mountinfo("9 8 254:0 /srv/www /www rw - ext4 /dev/vda rw\n")
    assert _host_path(data, host) == "/mnt/srv/www"
    (whole,) = procinfo.parse_mountinfo("9 8 254:0 / /host rw - ext4 /dev/vda rw\n")
    assert _host_path(whole, host) == "/"
    (other,) = procinfo.parse_mountinfo("9 8 0:99 / /x rw - tmpfs tmpfs rw\n")
    assert _host_path(other, host) == ""


def test_status_maps_and_cgroups() -> None:
    st = procinfo.parse_status(
        "Name:\tsleep\nUid:\t0\t0\t0\t0\nNSpid:\t4242\t1\nCapEff:\t00000000a80425fb\n"
    )
    assert procinfo.status_ids(st, "NSpid") == (4242, 1)
    assert procinfo.status_mask(st, "CapEff") == 0xA80425FB
    assert "CAP_SYS_ADMIN" not in cap_names(0xA80425FB)
    assert cap_names(1 << 21) == ["CAP_SYS_ADMIN"]
    maps = procinfo.parse_id_map("         0     100000      65536\n")
    assert procinfo.to_inside(100000, maps) == 0
    assert procinfo.to_inside(165535, maps) == 65535
    assert procinfo.to_inside(0, maps) is None
    cg = procinfo.parse_cgroup("4:memory:/portique/x\n1:name=systemd:/\n0::/\n")
    assert [(c.hierarchy, c.controllers, c.path) for c in cg] == [
        (4, ("memory",), "/portique/x"),
        (1, ("name=systemd",), "/"),
        (0, (), "/"),
    ]


def test_errno_names() -> None:
    assert (errno_name(0), errno_name(1), errno_name(-31)) == ("ok", "EPERM", "SIGSYS")


RULESET = """table ip portique_nat { # handle 3
\tcomment "/var/lib/portique"
\tchain published { # handle 3
\t\tip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80 comment "container abc" # handle 10
\t\tudp dport 53 dnat to 172.17.0.3:5353 # handle 11
\t}
}
table ip nat { # handle 9
\tchain DOCKER { # handle 2
\t\tiifname != "docker0" meta l4proto tcp tcp dport 9000 counter packets 0 bytes 0 dnat to 172.17.0.2:90 # handle 7
\t}
}
"""


def test_dnat_rules_towards_the_container() -> None:
    rules = parse_dnat(RULESET, {"172.17.0.2"})
    assert [
        (r.table, r.chain, r.protocol, r.host_ip, r.host_port, r.container_port) for r in rules
    ] == [
        ("ip portique_nat", "published", "tcp", "127.0.0.1", "8080", "80"),
        ("ip nat", "DOCKER", "tcp", "", "9000", "90"),
    ]
    assert rules[0].rule == (
        'ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80 comment "container abc"'
    )
    assert parse_dnat(RULESET, {"10.0.0.1"}) == []
