"""The SSRF guard: every refused address class, allow-list admission, and resolution handling."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Mapping, Sequence

import pytest

from eventrules.actions.ssrf import (
    AllowList,
    Resolver,
    refusal_reason,
    system_resolver,
    vet_destination,
)
from eventrules.errors import ConfigurationError, WebhookBlockedError


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.5", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - classified, never bound
        ("::", "an unspecified address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("100.127.255.254", "a carrier-grade NAT address"),
        ("fd12:3456::1", "a unique local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("168.63.129.16", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("::ffff:10.0.0.1", "a private address (embeds 10.0.0.1)"),
        ("::ffff:127.0.0.1", "a loopback address (embeds 127.0.0.1)"),
        ("::ffff:169.254.169.254", "a cloud metadata address (embeds 169.254.169.254)"),
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address (embeds 169.254.169.254)"),
        ("2002:a00:1::1", "a private address (embeds 10.0.0.1)"),
        ("192.0.2.1", "a private address"),  # documentation range
        ("2001:db8::1", "a private address"),  # documentation range
    ],
)
def test_refused_address_classes(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def stub_resolver(table: Mapping[str, Sequence[str]], calls: list[str] | None = None) -> Resolver:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        return table[host]

    return resolve


def vet(
    host: str, table: Mapping[str, Sequence[str]], allow: Sequence[str] = ()
) -> tuple[str, ...]:
    addresses = asyncio.run(
        vet_destination(host, 443, allow_list=AllowList.parse(allow), resolver=stub_resolver(table))
    )
    return tuple(str(address) for address in addresses)


def test_one_refused_address_among_public_ones_refuses_the_host() -> None:
    table = {"mixed.example.com": ["93.184.216.34", "10.0.0.5"]}
    with pytest.raises(WebhookBlockedError) as info:
        vet("mixed.example.com", table)
    assert info.value.address == "10.0.0.5"
    assert str(info.value) == (
        "blocked: mixed.example.com resolves to 10.0.0.5, a private address (allow-list: empty)"
    )


def test_ip_literal_is_checked_without_resolving() -> None:
    calls: list[str] = []
    with pytest.raises(WebhookBlockedError, match=r"^blocked: 10\.0\.0\.5 is a private address"):
        asyncio.run(
            vet_destination(
                "10.0.0.5", 80, allow_list=AllowList(), resolver=stub_resolver({}, calls)
            )
        )
    assert calls == []


def test_resolved_addresses_are_returned_deduplicated_in_order() -> None:
    table = {"hooks.example.com": ["93.184.216.35", "93.184.216.34", "93.184.216.35"]}
    assert vet("hooks.example.com", table) == ("93.184.216.35", "93.184.216.34")


def test_no_usable_address_is_a_resolution_error() -> None:
    with pytest.raises(OSError, match="no usable address"):
        vet("empty.example.com", {"empty.example.com": []})


@pytest.mark.parametrize(
    ("host", "allow", "admitted"),
    [
        ("127.0.0.1", ["127.0.0.1/32"], True),
        ("127.0.0.2", ["127.0.0.1/32"], False),
        ("127.0.0.1", ["127.0.0.1"], True),  # a bare IP is a /32
        ("10.1.2.3", ["10.1.0.0/16"], True),
        ("10.2.0.1", ["10.1.0.0/16"], False),
        ("::ffff:127.0.0.1", ["127.0.0.1/32"], True),  # the mapped form is the same host
        ("::1", ["127.0.0.1/32"], False),
        ("hooks.internal", ["hooks.internal"], True),
        ("Hooks.Internal.", ["hooks.internal"], True),  # case and root dot do not matter
        ("other.internal", ["hooks.internal"], False),
        ("169.254.169.254", ["10.0.0.0/8"], False),
    ],
)
def test_allow_list_admission(host: str, allow: list[str], admitted: bool) -> None:
    table = {name: ["10.9.9.9"] for name in ("hooks.internal", "Hooks.Internal.", "other.internal")}
    if admitted:
        expected = ipaddress.ip_address(table.get(host, [host])[0])
        assert vet(host, table, allow) == (str(expected),)
    else:
        with pytest.raises(WebhookBlockedError, match=re.escape(f"(allow-list: {allow[0]})")):
            vet(host, table, allow)


@pytest.mark.parametrize("entry", ["", "not a host", "http://x/"])
def test_allow_list_rejects_entries_it_cannot_read(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="allow-list entry"):
        AllowList.parse([entry])


@pytest.mark.parametrize("host", ["0x7f.1", "2130706433", "127.1", "localhost"])
def test_system_resolver_sees_through_odd_loopback_spellings(host: str) -> None:
    # getaddrinfo reads these from the string or /etc/hosts: no DNS traffic
    with pytest.raises(WebhookBlockedError, match="loopback"):
        asyncio.run(vet_destination(host, 80, allow_list=AllowList(), resolver=system_resolver))


def vet_port(host: str, port: int, allow: Sequence[str]) -> bool:
    table = {"hooks.internal": ["10.9.9.9"]}
    try:
        asyncio.run(
            vet_destination(
                host, port, allow_list=AllowList.parse(allow), resolver=stub_resolver(table)
            )
        )
    except WebhookBlockedError:
        return False
    return True


@pytest.mark.parametrize(
    ("host", "port", "allow", "admitted"),
    [
        # an entry with a port admits that port only: not the broker on 9092, not the worker
        ("127.0.0.1", 8080, ["127.0.0.1:8080"], True),
        ("127.0.0.1", 9092, ["127.0.0.1:8080"], False),
        ("127.0.0.1", 6066, ["127.0.0.1/32:8080"], False),
        ("10.20.30.40", 443, ["10.0.0.0/8:443"], True),
        ("10.20.30.40", 80, ["10.0.0.0/8:443"], False),
        ("::1", 8443, ["[::1]:8443"], True),
        ("::1", 8444, ["[::1]:8443"], False),
        ("fd00::5", 443, ["[fd00::/8]:443"], True),
        ("fd00::5", 443, ["fd00::/8"], True),  # bare IPv6 CIDR: every port
        ("hooks.internal", 8443, ["hooks.internal:8443"], True),
        ("hooks.internal", 443, ["hooks.internal:8443"], False),
        ("127.0.0.1", 9092, ["127.0.0.1/32"], True),  # no port: every port, as before
    ],
)
def test_allow_list_entries_with_ports(
    host: str, port: int, allow: list[str], admitted: bool
) -> None:
    assert vet_port(host, port, allow) is admitted


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        ("10.1.2.3/8", "write 10.0.0.0/8 for the whole network, or 10.1.2.3 for the one address"),
        ("10.1.2.3/8:443", "not a canonical CIDR"),
        ("[fd00::1/8]:443", "write fd00::/8"),
        ("127.0.0.1:0", "is not a port"),
        ("127.0.0.1:99999", "is not a port"),
        ("[::1", "expected [address]:port"),
        ("hooks.internal:http", "neither a CIDR nor a host name"),
    ],
)
def test_allow_list_refuses_non_canonical_cidrs_and_bad_ports(entry: str, hint: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(hint)):
        AllowList.parse([entry])
