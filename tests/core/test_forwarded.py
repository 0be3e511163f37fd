"""web/core/forwarded.py: which peers are trusted, and what their forwarding headers say."""

from __future__ import annotations

import ipaddress

import pytest

from web.core.forwarded import (
    DEFAULT_TRUSTED_PROXIES,
    ForwardedFor,
    TrustedProxies,
    read_forwarded,
    request_id_from,
)

LOOPBACK = TrustedProxies.parse(DEFAULT_TRUSTED_PROXIES)
# Two layers of proxies: a load balancer in 10.0.0.0/8 in front of nginx on this machine.
TWO_HOPS = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")


# ---- the allow-list


def test_parse_default_is_ipv4_and_ipv6_loopback_only() -> None:
    assert LOOPBACK.networks == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert not LOOPBACK.everyone
    assert LOOPBACK.trusts("127.0.0.1")
    assert LOOPBACK.trusts("::1")
    assert not LOOPBACK.trusts("127.0.0.2")
    assert not LOOPBACK.trusts("10.0.0.1")
    assert LOOPBACK.describe() == "127.0.0.1/32,::1/128"


def test_parse_takes_networks_and_trusts_their_members() -> None:
    proxies = TrustedProxies.parse(" 10.1.0.0/16 ,192.0.2.7,, 2001:db8::/32 ")
    assert proxies.describe() == "10.1.0.0/16,192.0.2.7/32,2001:db8::/32"
    assert proxies.trusts("10.1.200.3")
    assert not proxies.trusts("10.2.0.1")
    assert proxies.trusts("192.0.2.7")
    assert not proxies.trusts("192.0.2.8")
    assert proxies.trusts("2001:db8:ffff::1")
    assert not proxies.trusts("2001:db9::1")


def test_parse_network_with_host_bits_set_is_its_network() -> None:
    # As Gunicorn and Uvicorn read it: 10.1.2.3/8 means 10.0.0.0/8, not an error.
    assert TrustedProxies.parse("10.1.2.3/8").trusts("10.200.0.1")


def test_parse_star_trusts_everyone_whatever_else_is_listed() -> None:
    for text in ("*", "127.0.0.1, *"):
        proxies = TrustedProxies.parse(text)
        assert proxies.everyone
        assert proxies.describe() == "*"
        assert proxies.trusts("203.0.113.9")
        assert proxies.trusts("not even an address")


def test_parse_empty_trusts_nobody() -> None:
    proxies = TrustedProxies.parse(" , ")
    assert proxies == TrustedProxies()
    assert not proxies.trusts("127.0.0.1")


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "1.2.3", "::1::2", "10.0.0.1-5"])
def test_parse_refuses_a_bad_entry_by_name(entry: str) -> None:
    with pytest.raises(ValueError, match=f"'{entry}' is not an IP address or network"):
        TrustedProxies.parse(f"127.0.0.1,{entry}")


@pytest.mark.parametrize("peer", ["", "/run/lvd.sock", "unknown", "127.0.0.1:5001"])
def test_a_peer_that_is_not_an_address_is_not_trusted(peer: str) -> None:
    assert not TrustedProxies.parse("0.0.0.0/0,::/0").trusts(peer)


def test_an_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    # HOST=:: (dual stack): Hypercorn reports an IPv4 proxy as ::ffff:127.0.0.1.
    assert LOOPBACK.trusts("::ffff:127.0.0.1")
    assert TWO_HOPS.trusts("::ffff:10.0.0.5")


# ---- X-Forwarded-*


def test_nothing_forwarded_says_nothing() -> None:
    assert read_forwarded({}, LOOPBACK) == ForwardedFor()


def test_x_forwarded_headers_set_scheme_host_and_client() -> None:
    headers = {
        "x-forwarded-proto": "HTTPS",
        "x-forwarded-host": "lvd.example.com",
        "x-forwarded-for": "203.0.113.9",
    }
    assert read_forwarded(headers, LOOPBACK) == ForwardedFor(
        "https", "lvd.example.com", "203.0.113.9"
    )


def test_x_forwarded_for_client_is_the_nearest_untrusted_hop() -> None:
    # The client forged the first entry; the load balancer appended the client's real
    # address, nginx appended the load balancer's.
    headers = {"x-forwarded-for": "198.51.100.66, 203.0.113.9, 10.0.0.5"}
    assert read_forwarded(headers, TWO_HOPS).client == "203.0.113.9"
    # Trusting only nginx's own machine, the load balancer is the client.
    assert read_forwarded(headers, LOOPBACK).client == "10.0.0.5"


def test_x_forwarded_for_all_trusted_hops_gives_the_first() -> None:
    headers = {"x-forwarded-for": "10.0.0.9, 10.0.0.5, 127.0.0.1"}
    assert read_forwarded(headers, TWO_HOPS).client == "10.0.0.9"
    assert read_forwarded(headers, TrustedProxies.parse("*")).client == "10.0.0.9"


def test_x_forwarded_for_entries_with_ports_and_junk() -> None:
    headers = {"x-forwarded-for": '"[2001:db8::7]:4711", 198.51.100.1:80, 10.0.0.5'}
    assert read_forwarded(headers, TWO_HOPS).client == "198.51.100.1"
    # Beyond an untrusted hop that wrote no address, nothing is believed.
    headers = {"x-forwarded-for": "198.51.100.1, unknown, 10.0.0.5"}
    assert read_forwarded(headers, TWO_HOPS).client is None
    headers = {"x-forwarded-for": "2001:db8::7 , 10.0.0.5"}
    assert read_forwarded(headers, TWO_HOPS).client == "2001:db8::7"
    assert read_forwarded({"x-forwarded-for": "unknown, _hidden"}, LOOPBACK).client is None


def test_x_forwarded_proto_and_host_take_the_nearest_proxy_s_entry() -> None:
    headers = {
        "x-forwarded-proto": "http, https",
        "x-forwarded-host": "inner.example, lvd.example.com:8443",
    }
    said = read_forwarded(headers, LOOPBACK)
    assert (said.scheme, said.host) == ("https", "lvd.example.com:8443")


@pytest.mark.parametrize(
    "host",
    [
        "lvd.example.com",
        "lvd.example.com:8443",
        "127.0.0.1:5001",
        "[2001:db8::1]",
        "[2001:db8::1]:443",
    ],
)
def test_a_host_as_a_host_header_carries_it_is_taken(host: str) -> None:
    assert read_forwarded({"x-forwarded-host": host}, LOOPBACK).host == host


@pytest.mark.parametrize(
    "host",
    [
        "evil.example/path",
        "user@evil.example",
        "evil.example:443:1",
        "evil.example:123456",
        "evil example",
        "evil_host.example",
        "[2001:db8::1",
        "2001:db8::1",
        "evil.example\r\nSet-Cookie: a=b",
    ],
)
def test_a_bad_host_is_ignored(host: str) -> None:
    said = read_forwarded({"x-forwarded-host": host, "x-forwarded-proto": "https"}, LOOPBACK)
    assert said == ForwardedFor(scheme="https")


@pytest.mark.parametrize("scheme", ["ftp", "javascript", "wss", "https:", "", "http s"])
def test_a_bad_scheme_is_ignored(scheme: str) -> None:
    said = read_forwarded({"x-forwarded-proto": scheme, "x-forwarded-host": "a.example"}, LOOPBACK)
    assert said == ForwardedFor(host="a.example")


# ---- Forwarded (RFC 7239)


def test_forwarded_sets_scheme_host_and_client() -> None:
    headers = {"forwarded": 'for=203.0.113.9;proto=https;host="lvd.example.com"'}
    assert read_forwarded(headers, LOOPBACK) == ForwardedFor(
        "https", "lvd.example.com", "203.0.113.9"
    )


def test_forwarded_quoted_ipv6_with_port_and_case_insensitive_names() -> None:
    headers = {"forwarded": 'For="[2001:db8:cafe::17]:4711";Proto=HTTPS;Host=lvd.example.com:8443'}
    assert read_forwarded(headers, LOOPBACK) == ForwardedFor(
        "https", "lvd.example.com:8443", "2001:db8:cafe::17"
    )


def test_forwarded_chain_client_and_the_nearest_proxy_s_proto_and_host() -> None:
    # The client forged the first element; the load balancer wrote the second, and nginx
    # on this machine the last.
    headers = {
        "forwarded": (
            'for=198.51.100.66;proto=http;host=forged.example, for="203.0.113.9:5555", '
            "for=10.0.0.5;proto=https;host=lvd.example.com"
        )
    }
    assert read_forwarded(headers, TWO_HOPS) == ForwardedFor(
        "https", "lvd.example.com", "203.0.113.9"
    )


def test_forwarded_obfuscated_and_unknown_clients_are_no_address() -> None:
    for value in ("for=_hidden;proto=https", "for=unknown;proto=https", "proto=https"):
        assert read_forwarded({"forwarded": value}, LOOPBACK) == ForwardedFor(scheme="https")


def test_forwarded_bad_values_are_ignored() -> None:
    headers = {"forwarded": 'for=203.0.113.9;proto=gopher;host="evil.example/x"'}
    assert read_forwarded(headers, LOOPBACK) == ForwardedFor(client="203.0.113.9")
    assert read_forwarded({"forwarded": "garbage"}, LOOPBACK) == ForwardedFor()


def test_x_forwarded_headers_win_over_forwarded() -> None:
    # nginx set X-Forwarded-*; a client's own Forwarded passed through untouched.
    headers = {
        "forwarded": "for=198.51.100.66;proto=https;host=forged.example",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "http",
        "x-forwarded-host": "lvd.example.com",
    }
    assert read_forwarded(headers, LOOPBACK) == ForwardedFor(
        "http", "lvd.example.com", "203.0.113.9"
    )


def test_any_one_x_forwarded_header_shuts_forwarded_out() -> None:
    headers = {"forwarded": "for=198.51.100.66;proto=https;host=forged.example"}
    for name in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"):
        said = read_forwarded({**headers, name: "junk junk"}, LOOPBACK)
        assert said == ForwardedFor(), name
    # X-Request-ID is not a forwarding header: Forwarded is still read next to it.
    said = read_forwarded({**headers, "x-request-id": "abc"}, LOOPBACK)
    assert said == ForwardedFor("https", "forged.example", "198.51.100.66")


# ---- request ids


@pytest.mark.parametrize(
    "value",
    [
        "0123456789abcdef0123456789abcdef",  # nginx's $request_id
        "3f8c2a9e-6b1d-4c5e-9a7f-0e2d4b6c8a1f",  # a UUID
        "req.1:part_2",
        "x" * 128,
    ],
)
def test_request_id_from_keeps_a_plain_token(value: str) -> None:
    assert request_id_from(value) == value


@pytest.mark.parametrize(
    "value",
    [None, "", "x" * 129, "has space", "a,b", "<script>", 'quo"te', "é", "a\r\nSet-Cookie: x=1"],
)
def test_request_id_from_refuses_junk(value: str | None) -> None:
    assert request_id_from(value) is None


def test_request_id_from_refuses_a_trailing_newline() -> None:
    assert request_id_from("abc\n") is None
