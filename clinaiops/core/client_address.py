"""The client's address, trusted only as far as the configured proxies (TRUSTED_PROXIES).

`X-Forwarded-For` is written by whoever sends the request. A proxy appends the address it received the request
from, so the header can be believed only from its right-hand end, and only for as long as each hop was one of our
own proxies: walking it from the right, the first address that is not a trusted proxy is the client. A request
whose peer (REMOTE_ADDR) is not a trusted proxy is answered by its peer address alone, whatever it claims.

One rule for everyone who needs the address: the sign-in throttle (clinaiops.core.sign_in_throttle), django-axes
(AXES_CLIENT_IP_CALLABLE) and the request context that the audit ledger records (clinaiops.core.middleware). An
attacker who rotates the header therefore gets neither a fresh throttle bucket nor a fresh lock-out counter, and
cannot write a false address into the ledger.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings

from clinaiops.env import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(configured: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for item in configured:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigurationError(f"TRUSTED_PROXIES item {item!r} is not an address or CIDR") from exc
    return tuple(networks)


def trusted_proxy_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.TRUSTED_PROXIES))


def _address(value: str) -> Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return any(address in network or (mapped is not None and mapped in network) for network in networks)


def peer_is_trusted_proxy(meta: dict[str, Any]) -> bool:
    """Whether the request came straight from one of our proxies, whose forwarded headers may be believed."""
    peer = _address(str(meta.get("REMOTE_ADDR") or ""))
    return peer is not None and _trusted(peer, trusted_proxy_networks())


def client_address_from_meta(meta: dict[str, Any]) -> str | None:
    peer = _address(str(meta.get("REMOTE_ADDR") or ""))
    if peer is None:
        return None
    networks = trusted_proxy_networks()
    if not _trusted(peer, networks):
        return peer.compressed
    client = peer
    for hop in reversed(str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
        address = _address(hop)
        if address is None:
            # A malformed hop was written by someone our last trusted proxy could not vouch for; that proxy's
            # view of its peer (`client`) is the most we can believe.
            break
        client = address
        if not _trusted(address, networks):
            break
    return client.compressed


def client_address(request: Any) -> str | None:
    """The client's address for `request` (an HttpRequest or a DRF Request), by the rule above."""
    return client_address_from_meta(request.META)
