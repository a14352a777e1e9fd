"""Where the service may connect on a caller's say-so: webhook receivers and label printers.

A supervisor or integration names a host; the service then connects to it from inside the
network. Some networks are never reached unless the deployment says otherwise: link-local
(cloud metadata services live at 169.254.169.254), "this network", multicast. Loopback and
private ranges stay allowed by default because an on-premises OMS or a label printer usually
sits on one; a cloud deployment adds them (FLOOR_WEBHOOK_BLOCKED_NETWORKS,
FLOOR_PRINTER_BLOCKED_NETWORKS).

A host name is checked when it is resolved, at each connection (a name later pointed at a
blocked address is caught too); `resolve_allowed` gives the addresses to connect to, so the
address checked is the address used.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Iterable

# Link-local (and the metadata services there), the clouds' other metadata addresses (Alibaba
# Cloud's 100.100.100.200, AWS's IPv6 fd00:ec2::254), "this host" in both families, multicast.
DEFAULT_BLOCKED_NETWORKS = ("169.254.0.0/16,fe80::/10,100.100.100.200/32,fd00:ec2::254/128,"
                            "0.0.0.0/8,::/128,224.0.0.0/4,ff00::/8")
# A connection to an unspecified address (0.0.0.0, ::) reaches this host's loopback.
_LOOPBACK_OF_UNSPECIFIED = {4: ipaddress.ip_address("127.0.0.1"), 6: ipaddress.ip_address("::1")}
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedDestination(OSError):
    """A host that resolves (or is) an address in a blocked network."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to {address}, in a blocked network")
        self.host, self.address = host, address


def parse_networks(text: str | None) -> tuple[Network, ...]:
    """`10.0.0.0/8, ::1/128` → networks (None: the default list; "": none); a bad entry is a
    configuration error (ValueError)."""
    if text is None:
        text = DEFAULT_BLOCKED_NETWORKS
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def blocked_address(address: str, networks: Iterable[Network]) -> bool:
    """Whether an IP address (as getaddrinfo gives it, maybe with a %zone) is in a blocked
    network; IPv4-mapped IPv6 addresses count as their IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True                      # not an address at all: never connect to it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    candidates = [ip]
    if ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        # Blocking loopback blocks "this host" too, whatever else the list names.
        candidates.append(_LOOPBACK_OF_UNSPECIFIED[ip.version])
    return any(c.version == net.version and c in net for c in candidates for net in networks)


def literal_blocked(host: str, networks: Iterable[Network]) -> bool:
    """A host that is an IP address in a blocked network, in any form the resolver reads as
    one (`169.254.169.254`, `2852039166`, `0xa9fea9fe`, `::ffff:169.254.169.254`); no DNS is
    asked (names are checked when resolved, at each connection)."""
    networks = tuple(networks)
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return False                     # a name, not an address
    return any(blocked_address(str(info[4][0]), networks) for info in infos)


def resolve_allowed(host: str, port: int, networks: Iterable[Network]
                    ) -> list[tuple[int, tuple[object, ...]]]:
    """(family, sockaddr) of every address `host` resolves to, or BlockedDestination when any
    of them is blocked (a name that also resolves into a blocked network is refused whole, not
    tried address by address). socket.gaierror when it does not resolve."""
    networks = tuple(networks)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for family, _type, _proto, _name, sockaddr in infos:
        if blocked_address(str(sockaddr[0]), networks):
            raise BlockedDestination(host, str(sockaddr[0]))
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in infos]
