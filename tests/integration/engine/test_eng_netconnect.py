"""Issue 13 item 8: `network connect` of a running container does the whole job
(inspect, `ps --filter network=`, the resolver), and `disconnect` undoes it."""

from __future__ import annotations

from support.engine_cli import Portique


def test_connect_running_container_and_disconnect(pq: Portique) -> None:
    pq.ok("network", "create", "n8-net")
    srv = pq.ok("run", "-d", "--name", "n8-srv", "--network", "n8-net", "busybox",
                "sleep", "300").strip()  # fmt: skip
    cli = pq.ok("run", "-d", "--name", "n8-cli", "busybox", "sleep", "300").strip()
    gateway = pq.ok("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}",
                    "n8-net").strip()  # fmt: skip
    srv_ip = pq.inspect(srv, '{{(index .NetworkSettings.Networks "n8-net").IPAddress}}')
    assert pq("exec", cli, "nslookup", "n8-srv").returncode != 0  # the default bridge: no names

    pq.ok("network", "connect", "n8-net", "n8-cli")
    ip = pq.inspect(cli, '{{(index .NetworkSettings.Networks "n8-net").IPAddress}}')
    assert ip
    assert ip in pq.ok("exec", cli, "ip", "-o", "-4", "addr")
    assert pq.ok("ps", "-q", "--filter", "network=n8-net").split() == [cli[:12], srv[:12]]
    assert f"nameserver {gateway}" in pq.ok("exec", cli, "cat", "/etc/resolv.conf")
    assert srv_ip in pq.ok("exec", cli, "nslookup", "n8-srv")

    pq.ok("network", "disconnect", "n8-net", "n8-cli")
    assert pq.inspect(cli, "{{json .NetworkSettings.Networks}}").count("n8-net") == 0
    assert pq.ok("ps", "-q", "--filter", "network=n8-net").split() == [srv[:12]]
    assert ip not in pq.ok("exec", cli, "ip", "-o", "-4", "addr")
    assert f"nameserver {gateway}" not in pq.ok("exec", cli, "cat", "/etc/resolv.conf")
    assert pq("exec", cli, "nslookup", "n8-srv").returncode != 0
    pq.ok("rm", "-f", cli, srv)
    pq.ok("network", "rm", "n8-net")


def test_mac_address_is_the_interface_address(pq: Portique) -> None:
    out = pq.ok("run", "--rm", "--mac-address", "02:42:AC:11:00:99", "busybox", "cat",
                "/sys/class/net/eth0/address")  # fmt: skip
    assert out.strip() == "02:42:ac:11:00:99"
    p = pq("run", "--rm", "--mac-address", "01:00:00:00:00:01", "busybox", "true")
    assert p.returncode == 125
    assert "multicast" in p.stderr


def test_link_names_the_linked_container(pq: Portique) -> None:
    pq.ok("network", "create", "lk-net")
    for net in ("bridge", "lk-net"):
        srv = pq.ok("run", "-d", "--name", f"lk-{net}", "--network", net, "busybox",
                    "sleep", "300").strip()  # fmt: skip
        ip = pq.inspect(srv, f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}')
        out = pq.ok("run", "--rm", "--network", net, "--link", f"lk-{net}:db", "busybox", "sh",
                    "-c", "grep -w db /etc/hosts; ping -c1 -W5 db >/dev/null && echo up")  # fmt: skip
        line, up = out.splitlines()
        assert line.split() == [ip, "db", f"lk-{net}", srv[:12]]
        assert up == "up"
        pq.ok("stop", "-t", "0", srv)
        p = pq("run", "--rm", "--network", net, "--link", f"lk-{net}:db", "busybox", "true")
        assert p.returncode == 125
        assert "non running container" in p.stderr
        pq.ok("rm", srv)
    p = pq("create", "--link", "no-such-container", "busybox")
    assert p.returncode == 1
    assert "No such container" in p.stderr
    pq.ok("network", "rm", "lk-net")
