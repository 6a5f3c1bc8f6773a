"""Which addresses the control plane may connect to: webhook receivers and agents (pure; no Django, no I/O).

Only public unicast addresses, unless an operator-allowed network contains the address: webhooks
use AGENTFIELD_WEBHOOK_ALLOWED_CIDRS, agents (which live on private networks) their own
AGENTFIELD_AGENT_ALLOWED_CIDRS. Link-local and cloud metadata addresses are never an agent's,
whatever the allow-list says. The check runs on the addresses DNS returned, and the caller
connects to the one that passed, so a name that later re-resolves elsewhere (DNS rebinding)
cannot redirect the connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges `ipaddress.is_global` still calls global but that are no place to send a webhook.
EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast
        "2002::/16",  # 6to4: embeds an arbitrary IPv4 address
        "64:ff9b::/96",  # NAT64: embeds an arbitrary IPv4 address
        "64:ff9b:1::/48",  # local-use NAT64
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fec0::/10",  # deprecated site-local
    )
)


# Never an agent's address, even inside an allowed network: link-local (the cloud metadata
# service lives at 169.254.169.254 and fd00:ec2::254) and the other providers' metadata hosts.
NEVER_AGENTS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32", "0.0.0.0/8", "::/128")
)


def parse_networks(cidrs: Iterable[str], setting: str = "AGENTFIELD_WEBHOOK_ALLOWED_CIDRS") -> tuple[IPNetwork, ...]:
    """The allowed networks from settings strings; a bad entry raises ValueError naming it."""
    networks = []
    for cidr in cidrs:
        cidr = cidr.strip()
        if not cidr:
            continue
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as exc:
            raise ValueError(f"{setting}: {cidr!r} is not a network") from exc
    return tuple(networks)


def canonical(address: IPAddress) -> IPAddress:
    """`::ffff:a.b.c.d` (IPv4-mapped) as the IPv4 address it really is; anything else unchanged."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def is_public(address: IPAddress) -> bool:
    """Whether `address` is globally routable unicast (not loopback, private, link-local, CGNAT, ...)."""
    address = canonical(address)
    if not address.is_global:
        return False
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return False
    if address.is_loopback or address.is_link_local or address.is_private:
        return False
    return not any(address.version == net.version and address in net for net in EXTRA_BLOCKED)


def _inside(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def permitted(address: str, allowed: Sequence[IPNetwork] = (), never: Sequence[IPNetwork] = ()) -> bool:
    """Whether a connection to `address` is allowed: never in `never`; public, or in an allowed network."""
    try:
        parsed = canonical(ipaddress.ip_address(address))
    except ValueError:
        return False
    if _inside(parsed, never):
        return False
    return _inside(parsed, allowed) or is_public(parsed)


def choose(addresses: Sequence[str], allowed: Sequence[IPNetwork] = (), never: Sequence[IPNetwork] = ()) -> str | None:
    """The first permitted address among those DNS returned, or None when every one is refused."""
    for address in addresses:
        if permitted(address, allowed, never):
            return address
    return None
