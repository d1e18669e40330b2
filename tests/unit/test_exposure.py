"""Fail closed: where the API may listen with no identity configured."""

from __future__ import annotations

import pytest

from cartwatch.streams.http.errors import ExposedWithoutIdentity
from cartwatch.streams.http.exposure import beyond_loopback, check_exposure


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"])
def test_loopback_addresses_reach_only_this_machine(host: str):
    assert not beyond_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.4", "worker-1"])
def test_every_other_address_or_name_may_be_reached_from_elsewhere(host: str):
    assert beyond_loopback(host)


def test_with_no_identity_the_api_is_open_on_loopback_and_refused_elsewhere():
    assert check_exposure("127.0.0.1", identity_configured=False) is True
    with pytest.raises(ExposedWithoutIdentity, match=r"0\.0\.0\.0 with no identity configured"):
        check_exposure("0.0.0.0", identity_configured=False)


def test_with_an_identity_source_the_api_may_listen_anywhere():
    assert check_exposure("0.0.0.0", identity_configured=True) is False
