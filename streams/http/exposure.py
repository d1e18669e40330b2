"""Fail closed: the API never listens beyond loopback while nobody has to say who they are.

With no identity source (no service token, no OIDC provider, no local account) every
request is served, so the API may only listen where nothing but this machine reaches it.
"""

from __future__ import annotations

import ipaddress

from cartwatch.streams.http.errors import ExposedWithoutIdentity

OPEN_ON_LOOPBACK = (
    "the API on %s has no identity configured: anyone on this machine may read it "
    "(set CARTWATCH_API_TOKEN or CARTWATCH_OIDC_*, or add an account: cartwatch users add)"
)


def beyond_loopback(host: str) -> bool:
    """Whether an address to listen on is reachable from other machines (a name: assumed)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a host name may resolve to any interface


def check_exposure(host: str, identity_configured: bool) -> bool:
    """True when the API is open (on loopback, allowed); ExposedWithoutIdentity when it would
    be open beyond loopback."""
    if identity_configured:
        return False
    if beyond_loopback(host):
        raise ExposedWithoutIdentity(
            f"the API would listen on {host} with no identity configured: set "
            "CARTWATCH_API_TOKEN or CARTWATCH_OIDC_*, or add an account (cartwatch users add), "
            "or listen on 127.0.0.1 (CARTWATCH_API_HOST)"
        )
    return True
