"""The SSRF guard: a webhook may only reach addresses that are public or that an operator admitted.

Every address a host resolves to is checked, and the caller connects to one of the checked
addresses (it never resolves the name again), so a DNS answer cannot change between the check and
the connection. Refused: private, loopback, link-local, multicast, reserved, unspecified,
carrier-grade NAT (100.64.0.0/10), IPv6 unique local, anything else not globally routable, cloud
metadata endpoints, and IPv6 forms that embed one of those IPv4 addresses (mapped, NAT64, 6to4).

The operator allow-list holds CIDRs (``127.0.0.1/32``, ``10.1.0.0/16``, a bare IP) and exact host
names (``hooks.internal``; no wildcards), each optionally with one port: ``127.0.0.1:8080``,
``10.0.0.0/8:443``, ``[fd00::/8]:443``, ``hooks.internal:8443``. An entry without a port admits
every port (so ``127.0.0.1/32`` also admits the broker and the worker's own web port: prefer a
port). A host name entry admits whatever that name resolves to. A CIDR with host bits set
(``10.1.2.3/8``) is refused rather than silently widened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from eventrules.errors import ConfigurationError, WebhookBlockedError

__all__ = [
    "METADATA_ADDRESSES",
    "AllowList",
    "IPAddress",
    "Resolver",
    "refusal_reason",
    "system_resolver",
    "vet_destination",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Resolves (host, port) to IP address strings; injected so unit tests never touch DNS.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Instance metadata services hand out cloud credentials; some are otherwise public addresses.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server: a public address, so only this list catches it
    )
)

_CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class AllowList:
    """Operator-admitted destinations; build it with :meth:`parse`. A port of None: any port."""

    networks: tuple[tuple[IPNetwork, int | None], ...] = ()
    hosts: frozenset[tuple[str, int | None]] = frozenset()
    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        networks: list[tuple[IPNetwork, int | None]] = []
        hosts: set[tuple[str, int | None]] = set()
        kept: list[str] = []
        for raw in entries:
            entry = raw.strip()
            target, port = _split_port(entry, raw)
            network = _parse_network(target, raw)
            if network is not None:
                networks.append((network, port))
            elif not target or "/" in target or ":" in target or " " in target:
                raise ConfigurationError(
                    f"webhook allow-list entry {raw!r} is neither a CIDR nor a host name"
                    " (optionally with :port)"
                )
            else:
                hosts.add((_normalise_host(target), port))
            kept.append(entry)
        return cls(networks=tuple(networks), hosts=frozenset(hosts), entries=tuple(kept))

    def admits_host(self, host: str, port: int) -> bool:
        name = _normalise_host(host)
        return (name, None) in self.hosts or (name, port) in self.hosts

    def admits_address(self, address: IPAddress, port: int) -> bool:
        candidates = [address]
        inner = _embedded_ipv4(address)
        if inner is not None:
            candidates.append(inner)
        return any(
            candidate in network and allowed in (None, port)
            for candidate in candidates
            for network, allowed in self.networks
            if candidate.version == network.version
        )

    def __str__(self) -> str:
        return ", ".join(self.entries) or "empty"


def _split_port(entry: str, raw: str) -> tuple[str, int | None]:
    """``(target, port)`` of ``host:port``, ``cidr:port`` or ``[ipv6 or cidr]:port``."""
    if entry.startswith("["):
        inside, closed, rest = entry[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ConfigurationError(f"webhook allow-list entry {raw!r}: expected [address]:port")
        return inside, _port(rest[1:], raw) if rest else None
    head, colon, tail = entry.rpartition(":")
    if colon and head.count(":") == 0 and tail.isdigit():
        return head, _port(tail, raw)
    return entry, None


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigurationError(f"webhook allow-list entry {raw!r}: {text!r} is not a port")
    return int(text)


def _parse_network(target: str, raw: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(target, strict=True)
    except ValueError as exc:
        if "has host bits set" not in str(exc):
            return None
    widened = ipaddress.ip_network(target, strict=False)
    address = target.partition("/")[0]
    raise ConfigurationError(
        f"webhook allow-list entry {raw!r} is not a canonical CIDR (host bits set): write"
        f" {widened} for the whole network, or {address} for the one address"
    )


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be reached without an allow-list entry, or None when it is public.

    The reason reads after an article: "a private address", "an unspecified address".
    """
    inner = _embedded_ipv4(address)
    if inner is not None:
        reason = refusal_reason(inner)
        return None if reason is None else f"{reason} (embeds {inner})"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in _CARRIER_GRADE_NAT, "a carrier-grade NAT address"),
        (address in _UNIQUE_LOCAL, "a unique local address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        # documentation, benchmarking and future ranges the flags above do not name
        (not address.is_global, "a non-global address"),
    )
    return next((reason for refused, reason in checks if refused), None)


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Resolve with the event loop's getaddrinfo (runs in a thread, never blocks the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def vet_destination(
    host: str, port: int, *, allow_list: AllowList, resolver: Resolver
) -> tuple[IPAddress, ...]:
    """The checked addresses of ``host``, in resolver order, to connect to instead of the name.

    Raises :class:`WebhookBlockedError` when any address is refused, and whatever the resolver
    raises (``OSError``) when the name does not resolve.
    """
    literal = _parse_address(host)
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        resolved = await resolver(host, port)
        # dict.fromkeys: getaddrinfo repeats an address once per protocol; keep the order
        parsed = (_parse_address(text) for text in resolved)
        addresses = tuple(dict.fromkeys(ip for ip in parsed if ip is not None))
        if not addresses:
            raise OSError(f"{host} resolved to no usable address")
    if allow_list.admits_host(host, port):
        return addresses
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None and not allow_list.admits_address(address, port):
            raise WebhookBlockedError(
                host=host, address=str(address), reason=reason, allow_list=str(allow_list)
            )
    return addresses


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _normalise_host(host: str) -> str:
    # DNS names are case-insensitive and "example.com." is the same host as "example.com"
    return host.lower().rstrip(".")
