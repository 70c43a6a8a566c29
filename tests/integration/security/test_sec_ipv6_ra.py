"""A container must not configure the host's (or its neighbours') IPv6 with router
advertisements (CVE-2020-13401).

A container has CAP_NET_RAW, as in Docker, so it can send any ICMPv6 packet on
its bridge. The host's bridge accepts router advertisements by default
(accept_ra=1, forwarding=0): one RA with a prefix makes the host add a route
and an address on the bridge, one with a router lifetime gives the host a
default route through the container, which then sees (or drops) the host's
IPv6 traffic. The other containers on the bridge accept them as well.

The attacking image ships `ra`, a static program that sends three RAs carrying
a test prefix (router lifetime 0: no default route, so a failing run does not
disturb the host's own traffic), then pings all nodes and waits for the host's
answer: once the host answered, it has processed the RAs sent before.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.sec_engine import build_static, engine, image_tar

PREFIX = "fd42:5ec:7e57:1::"

RA_SENDER = r"""
#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *prefix = argc > 1 ? argv[1] : "fd42::";
    int s = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
    if (s < 0) { perror("socket"); return 2; }
    int hops = 255;
    unsigned idx = if_nametoindex("eth0");
    setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
    setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
    struct sockaddr_in6 all = {.sin6_family = AF_INET6, .sin6_scope_id = idx};
    inet_pton(AF_INET6, "ff02::1", &all.sin6_addr);
    unsigned char ra[sizeof(struct nd_router_advert) + sizeof(struct nd_opt_prefix_info)];
    memset(ra, 0, sizeof ra);
    struct nd_router_advert *h = (struct nd_router_advert *)ra;
    h->nd_ra_type = ND_ROUTER_ADVERT;
    h->nd_ra_curhoplimit = 64;
    struct nd_opt_prefix_info *pi = (struct nd_opt_prefix_info *)(ra + sizeof *h);
    pi->nd_opt_pi_type = ND_OPT_PREFIX_INFORMATION;
    pi->nd_opt_pi_len = 4;
    pi->nd_opt_pi_prefix_len = 64;
    pi->nd_opt_pi_flags_reserved = ND_OPT_PI_FLAG_ONLINK | ND_OPT_PI_FLAG_AUTO;
    pi->nd_opt_pi_valid_time = htonl(300);
    pi->nd_opt_pi_preferred_time = htonl(300);
    inet_pton(AF_INET6, prefix, &pi->nd_opt_pi_prefix);
    /* Duplicate address detection keeps eth0 from sending for a moment: retry. */
    for (int sent = 0, tries = 0; sent < 3 && tries < 400; tries++) {
        if (sendto(s, ra, sizeof ra, 0, (struct sockaddr *)&all, sizeof all) == sizeof ra)
            sent++;
        usleep(20000);
    }
    struct icmp6_hdr echo = {.icmp6_type = ICMP6_ECHO_REQUEST, .icmp6_id = htons(4242)};
    for (int round = 0; round < 100; round++) {
        sendto(s, &echo, sizeof echo, 0, (struct sockaddr *)&all, sizeof all);
        struct pollfd p = {.fd = s, .events = POLLIN};
        while (poll(&p, 1, 100) > 0) {
            unsigned char buf[1500];
            struct sockaddr_in6 from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (n >= 8 && buf[0] == ICMP6_ECHO_REPLY) {
                char who[64];
                inet_ntop(AF_INET6, &from.sin6_addr, who, sizeof who);
                printf("answered by %s\n", who);
                return 0;
            }
        }
    }
    puts("no answer");
    return 3;
}
"""


@pytest.fixture(scope="module")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("ra")
    ra = build_static(RA_SENDER, base / "bin" / "ra")
    with engine(base, f"pq-sec-ra-{os.getpid()}") as p:
        p.ok("import", str(image_tar(base / "img", {"/usr/bin/ra": ra})), "ra:latest")
        yield p


def host_ipv6_on(bridge: str) -> str:
    routes = subprocess.run(
        ["ip", "-6", "route", "show", "dev", bridge], capture_output=True, text=True, check=True
    ).stdout
    addrs = subprocess.run(
        ["ip", "-6", "addr", "show", "dev", bridge], capture_output=True, text=True, check=True
    ).stdout
    return routes + addrs


@pytest.mark.parametrize("network", ["bridge", "ranet"])
def test_container_router_advertisements_are_ignored(
    pq: Portique, network: str, tmp_path: Path
) -> None:
    if not Path("/proc/sys/net/ipv6").is_dir():
        pytest.fail("this host has no IPv6: the attack cannot be tried here")
    if network != "bridge":
        pq.ok("network", "create", network)
    prefix = PREFIX.replace(":1::", f":{2 if network == 'bridge' else 3}::")
    victim = pq.ok("run", "-d", "--network", network, "ra", "sleep", "600").strip()
    bridge = _bridge_of(pq, network)
    out = pq.ok("run", "--rm", "--network", network, "ra", "ra", prefix, timeout=120)
    assert "answered by fe80:" in out, out  # the host processed the RAs sent before
    seen = host_ipv6_on(bridge)
    assert prefix.rstrip(":") not in seen, f"the host took a container's RA on {bridge}:\n{seen}"
    inside = pq.ok("exec", victim, "sh", "-c", "ip -6 route; ip -6 addr")
    assert prefix.rstrip(":") not in inside, f"a neighbour took a container's RA:\n{inside}"
    pq.ok("rm", "-f", victim)


def _bridge_of(pq: Portique, network: str) -> str:
    from portique.network.networks import Networks

    nets = Networks(pq.root, run_root=pq.run_root)
    try:
        return nets.inspect(network).bridge
    finally:
        nets.close()
