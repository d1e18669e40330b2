"""Identities and roles without I/O: what each role may do, how tokens and role claims are
read, and the identity settings."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr, ValidationError

from cartwatch.streams.http.errors import NotAuthenticated
from cartwatch.streams.http.identity import (
    Authenticator,
    Identity,
    ServiceAccount,
    bearer_token,
    parse_roles,
)
from cartwatch.streams.http.oidc import roles_claim
from cartwatch.streams.worker.settings import Settings

AUTH0_CLAIM = "https://cartwatch.example.org/roles"


def person(*roles: str) -> Identity:
    return Identity("dr.ada", frozenset(roles), "local")


def test_admin_may_do_everything() -> None:
    assert all(person("admin").may(role) for role in ("viewer", "physician", "data-manager"))


def test_any_role_implies_viewer_but_no_other_role() -> None:
    assert person("physician").may("viewer") and person("data-manager").may("viewer")
    assert not person("physician").may("data-manager")
    assert not person("data-manager").may("physician")


def test_no_role_may_nothing_not_even_view() -> None:
    assert not person().may("viewer")


def test_roles_are_read_from_a_list_or_a_comma_separated_string() -> None:
    assert parse_roles("physician, viewer") == {"physician", "viewer"}
    assert parse_roles(["admin"]) == {"admin"}
    with pytest.raises(ValueError, match="unknown role 'surgeon'"):
        parse_roles("viewer,surgeon")


@pytest.mark.parametrize("header", ["Bearer t0k", "bearer t0k", "BEARER  t0k ", " Bearer t0k"])
def test_the_bearer_scheme_is_read_in_any_case_and_spacing(header: str) -> None:
    assert bearer_token(header) == "t0k"


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "t0k"])
def test_a_header_that_is_not_a_bearer_token_is_not_authenticated(header: str | None) -> None:
    with pytest.raises(NotAuthenticated):
        bearer_token(header)


def test_the_service_token_is_a_viewer_unless_given_roles() -> None:
    viewer = ServiceAccount(SecretStr("s3cret"))
    assert viewer.identify("s3cret") == Identity("service", frozenset({"viewer"}), "service")
    assert viewer.identify("s3cret ") is None and viewer.identify("sécret\udcff") is None
    physician = ServiceAccount(SecretStr("s3cret"), frozenset({"physician"}))
    assert physician.identify("s3cret").may("physician")


def test_with_no_source_configured_a_request_has_no_identity_and_the_api_is_open() -> None:
    assert asyncio.run(Authenticator().for_credential(None)) is None


def test_with_a_source_configured_a_request_without_a_token_is_not_authenticated() -> None:
    service = Authenticator(service=ServiceAccount(SecretStr("s3cret")))
    with pytest.raises(NotAuthenticated, match="no bearer token"):
        asyncio.run(service.for_credential(None))


@pytest.mark.parametrize(
    ("claims", "path", "roles"),
    [
        ({"roles": ["physician", "x"]}, "roles", ["physician", "x"]),
        ({"realm_access": {"roles": ["admin"]}}, "realm_access.roles", ["admin"]),
        ({AUTH0_CLAIM: ["viewer"]}, AUTH0_CLAIM, ["viewer"]),  # a claim name holding dots
        ({"groups": "viewer physician"}, "groups", ["viewer", "physician"]),
        ({"roles": "viewer,admin"}, "roles", ["viewer", "admin"]),
        ({"realm_access": ["admin"]}, "realm_access.roles", []),
        ({}, "roles", []),
        ({"roles": [1, "viewer", None]}, "roles", ["viewer"]),
    ],
)  # fmt: skip
def test_roles_come_from_a_claim_by_name_or_dotted_path(claims: dict, path: str, roles) -> None:
    assert roles_claim(claims, path) == roles


def test_the_service_token_roles_setting_names_known_roles_only() -> None:
    assert Settings(api_token_roles="viewer, physician").api_token_roles == "physician,viewer"
    for wrong in ("surgeon", " , "):
        with pytest.raises(ValidationError):
            Settings(api_token_roles=wrong)


def test_oidc_settings_come_all_three_or_not_at_all() -> None:
    with pytest.raises(ValidationError, match="OIDC needs all of"):
        Settings(oidc_issuer="https://id.example.org", oidc_audience="cartwatch")
    with pytest.raises(ValidationError, match="http"):
        Settings(oidc_issuer="i", oidc_audience="a", oidc_jwks_url="file:///etc/passwd")
    configured = Settings(oidc_issuer="i", oidc_audience="a", oidc_jwks_url="https://id/jwks")
    assert configured.oidc_roles_claim == "roles"
