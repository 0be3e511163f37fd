"""Who may say where a request came from: trusted proxies and the X-Forwarded-*/Forwarded headers.

A reverse proxy that terminates TLS tells the app the scheme, host and client it saw. Those
headers are believed only from the addresses in LVD_FORWARDED_ALLOW_IPS (as Gunicorn's and
Uvicorn's forwarded-allow-ips): from anyone else they are ignored, or any client could claim
to be on HTTPS or to come from another address.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TRUSTED_PROXIES = "127.0.0.1,::1"
# A host as a Host header carries it: a name or address, an optional port; nothing else.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?")
_SCHEMES = frozenset({"http", "https"})
# A proxy's X-Request-ID is kept only when it looks like one (nginx's $request_id, a UUID).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class TrustedProxies:
    """The peers whose forwarding headers are believed: networks, or everyone (`*`)."""

    networks: tuple[IPNetwork, ...] = ()
    everyone: bool = False

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """`127.0.0.1,::1`, `10.0.0.0/8`, `*`; raises ValueError naming a bad entry."""
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        if "*" in entries:
            return cls(everyone=True)
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return cls(tuple(networks))

    def describe(self) -> str:
        return "*" if self.everyone else ",".join(str(network) for network in self.networks)

    def trusts(self, peer: str) -> bool:
        return self.everyone or _in_networks(self.networks, peer)


# A server sees few distinct peers: the answer per address is cached.
@functools.lru_cache(maxsize=4096)
def _in_networks(networks: tuple[IPNetwork, ...], peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False  # a Unix socket path or nothing: not a proxy we know
    # Listening on `::`, an IPv4 peer shows as ::ffff:a.b.c.d: it is the IPv4 address.
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address in network for network in networks)


@dataclass(frozen=True)
class ForwardedFor:
    """What trusted proxies say of a request; None where they said nothing usable."""

    scheme: str | None = None
    host: str | None = None
    client: str | None = None


def read_forwarded(headers: dict[str, str], proxies: TrustedProxies) -> ForwardedFor:
    """The scheme, host and client from `X-Forwarded-*`, or else `Forwarded` (RFC 7239).

    X-Forwarded-* first: nginx, Caddy and the cloud load balancers set those and pass a
    client's own `Forwarded` through untouched, so it is read only when they are absent.
    Each proxy appends to the chain, so the nearest proxy's word is the last entry; the
    client is the last address in the chain that is not itself a trusted proxy.
    """
    if not any(name.startswith("x-forwarded-") for name in headers) and "forwarded" in headers:
        elements = _forwarded_elements(headers["forwarded"])
        last = elements[-1] if elements else {}
        chain = [element["for"] for element in elements if "for" in element]
        return ForwardedFor(
            _scheme(last.get("proto")), _host(last.get("host")), _client(chain, proxies)
        )
    chain = _split(headers.get("x-forwarded-for", ""))
    return ForwardedFor(
        _scheme(_last(headers.get("x-forwarded-proto"))),
        _host(_last(headers.get("x-forwarded-host"))),
        _client(chain, proxies),
    )


def request_id_from(value: str | None) -> str | None:
    """A proxy's request id when it is a plain token, else None (one is made instead)."""
    return value if value is not None and _REQUEST_ID.fullmatch(value) else None


def _forwarded_elements(value: str) -> list[dict[str, str]]:
    elements = []
    for element in value.split(","):
        pairs: dict[str, str] = {}
        for pair in element.split(";"):
            name, sep, raw = pair.partition("=")
            if sep:
                pairs[name.strip().lower()] = raw.strip().strip('"')
        elements.append(pairs)
    return elements


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _last(value: str | None) -> str | None:
    parts = _split(value or "")
    return parts[-1] if parts else None


def _scheme(value: str | None) -> str | None:
    scheme = (value or "").lower()
    return scheme if scheme in _SCHEMES else None


def _host(value: str | None) -> str | None:
    return value if value and _HOST.fullmatch(value) else None


def _client(chain: list[str], proxies: TrustedProxies) -> str | None:
    addresses = [_bare_address(entry) for entry in chain]
    for address in reversed(addresses):
        if address is None:
            # An untrusted hop wrote something that is no address ("unknown"): what lies
            # beyond it is its word, not a trusted proxy's; keep the peer we know.
            return None
        if not proxies.trusts(address):
            return address
    # Every hop a trusted proxy: the first one is as near the client as we can know.
    return addresses[0] if addresses else None


def _bare_address(entry: str) -> str | None:
    """`203.0.113.7`, `"[2001:db8::1]:4711"`, `198.51.100.1:80` -> the address alone."""
    entry = entry.strip('"')
    if entry.startswith("["):
        entry = entry[1 : entry.find("]")] if "]" in entry else ""
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None  # "unknown", an obfuscated identifier: not an address
