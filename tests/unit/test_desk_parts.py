"""The desk's small parts: where a credential comes from, which origins and paths pass,
how figures and times read."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from cartwatch.streams.http.credentials import by_cookie, credential_of, same_origin
from cartwatch.streams.http.desk.guard import local_path
from cartwatch.streams.http.desk.pages import age, number, percent, utc
from cartwatch.streams.http.errors import NotAuthenticated


def request(headers: dict[str, str] | None = None, method: str = "GET"):
    return make_mocked_request(
        method, "/desk", headers={"Host": "desk.test:6066", **(headers or {})}
    )


def test_the_credential_is_the_bearer_token_in_any_case_of_the_scheme():
    assert credential_of(request({"Authorization": "Bearer abc"})) == "abc"
    assert credential_of(request({"Authorization": "bEaReR   abc  "})) == "abc"


def test_without_a_bearer_header_the_credential_is_the_session_cookie():
    cookie = {"Cookie": "cartwatch_session=tok; other=1"}
    assert credential_of(request(cookie)) == "tok"
    assert by_cookie(request(cookie))
    assert credential_of(request({"Authorization": "Bearer hdr", **cookie})) == "hdr"
    assert not by_cookie(request({"Authorization": "Bearer hdr", **cookie}))
    assert credential_of(request()) is None


def test_an_authorization_header_of_another_scheme_is_refused_not_passed_over():
    cookie = {"Cookie": "cartwatch_session=tok"}
    with pytest.raises(NotAuthenticated, match="Bearer <token>"):
        credential_of(request({"Authorization": "Basic dXNlcg==", **cookie}))


def test_a_form_passes_only_from_this_origin_or_the_desks_public_one():
    assert same_origin(request({"Origin": "http://desk.test:6066"}, "POST"))
    assert same_origin(request({"Referer": "http://desk.test:6066/desk/x"}, "POST"))
    assert not same_origin(request({"Origin": "http://evil.test"}, "POST"))
    assert not same_origin(request({"Origin": "null"}, "POST"))
    assert not same_origin(request({"Origin": "http://[::1"}, "POST"))  # no URL at all
    assert not same_origin(request(method="POST"))
    public = "https://cartwatch.example.org"
    assert same_origin(request({"Origin": public}, "POST"), public)


def test_a_return_path_stays_on_the_desk():
    assert local_path("/desk/trials/T1/patients/P%2F1") == "/desk/trials/T1/patients/P%2F1"
    assert local_path("/desk") == "/desk"
    for elsewhere in ("//evil.example/desk", "https://evil.example/desk", "/desktop", "/desk//x"):
        assert local_path(elsewhere) is None
    assert local_path("/desk/\\evil") is None and local_path(None) is None


def test_figures_and_times_read_as_people_write_them():
    assert [number(v) for v in (39.14, 4.0, 4, None)] == ["39.1", "4", "4", "—"]
    assert number(0.004, 4) == "0.004" and percent(0.7979) == "79.8%" and percent(None) == "—"
    assert utc("2025-02-07T14:00:00+01:00") == "2025-02-07 13:00 UTC"
    now = 1_000_000.0
    assert [age(now - s, now) for s in (5, 720, 3 * 3600 + 300, 7200, 4 * 86400)] == [
        "5 s",
        "12 min",
        "3 h 5 min",
        "2 h",
        "4 d",
    ]
