"""Bring the loopback interface up inside a container's new network namespace.

A socket belongs to the namespace it was created in: linux/net.py makes one
inside the namespace and sets IFF_UP on "lo" through it (no netlink library
needed).
"""

from __future__ import annotations

import socket

from portique.linux.net import link_up
from portique.linux.net import socket_in_netns as _socket_in


def socket_in_netns(netns_path: str) -> socket.socket:
    return _socket_in(netns_path, socket.AF_INET, socket.SOCK_DGRAM)


def loopback_up(netns_path: str) -> None:
    with socket_in_netns(netns_path) as s:
        link_up(s, "lo")
