"""The body parser and the scope decision (SPEC §1 scope rules)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsas.errors import InvalidRequest, Refusal, ScopeNotAllowed
from certsas.registry import Registration
from certsas.scope import MAX_BODY_BYTES, TokenRequest, decide_scope, parse_token_request
from tests.support.pki import Pki


@pytest.fixture
def registration(pki: Pki) -> Registration:
    return Registration.for_certificate(pki.client.certificate, container="reports",
                                        permissions="rwl", max_ttl_minutes=30)


def decide(request: TokenRequest, registration: Registration, default: int = 15,
           cap: int = 60) -> tuple[str, str | None, str, int]:
    grant = decide_scope(request, registration, default_ttl_minutes=default, max_ttl_minutes=cap)
    return grant.container, grant.blob, grant.permissions, grant.ttl_minutes


def test_defaults_come_from_the_registration(registration: Registration) -> None:
    assert decide(TokenRequest(), registration) == ("reports", None, "rwl", 15)
    assert decide(TokenRequest(blob="a"), registration) == ("reports", "a", "rw", 15)


def test_default_ttl_is_capped_by_registration_and_setting(registration: Registration) -> None:
    assert decide(TokenRequest(), registration, default=45)[3] == 30
    assert decide(TokenRequest(), registration, default=15, cap=10)[3] == 10


def test_narrower_requests_are_granted(registration: Registration) -> None:
    assert decide(TokenRequest(container="reports", permissions="r", ttl_minutes=5),
                  registration) == ("reports", None, "r", 5)


@pytest.mark.parametrize("request_", [
    TokenRequest(container="other"),
    TokenRequest(permissions="rwd"),
    TokenRequest(ttl_minutes=31),
    TokenRequest(ttl_minutes=61),
])
def test_beyond_the_registration_is_never_silently_reduced(
        registration: Registration, request_: TokenRequest) -> None:
    with pytest.raises(ScopeNotAllowed):
        decide(request_, registration)


def test_setting_cap_applies_even_if_registration_allows_more(registration: Registration) -> None:
    with pytest.raises(ScopeNotAllowed):
        decide(TokenRequest(ttl_minutes=25), registration, cap=20)


def test_prefix_means_blob_scoped_under_it(registration: Registration) -> None:
    prefixed = replace(registration, prefix="tenant-a/")
    assert decide(TokenRequest(blob="tenant-a/x"), prefixed)[1] == "tenant-a/x"
    for request in (TokenRequest(), TokenRequest(blob="tenant-b/x"), TokenRequest(blob="tenant-a")):
        with pytest.raises(ScopeNotAllowed):
            decide(request, prefixed)


@pytest.mark.parametrize("prefix", ["tenant-a", "/tenant-a/", "a/../b/", "a\\b/", "x" * 1025 + "/"])
def test_a_prefix_that_is_not_a_folder_is_refused_at_registration(pki: Pki, prefix: str) -> None:
    # "tenant-a" would cover the sibling "tenant-ab/x": a prefix is a folder.
    with pytest.raises(ValueError, match="prefix"):
        Registration.for_certificate(pki.client.certificate, container="reports", prefix=prefix)


def test_a_stored_prefix_without_its_slash_is_read_as_the_folder(
        registration: Registration) -> None:
    entity = {**registration.to_entity(), "BlobPrefix": "tenant-a"}
    stored = Registration.from_entity(entity)
    assert stored.prefix == "tenant-a/"
    assert decide(TokenRequest(blob="tenant-a/x"), stored)[1] == "tenant-a/x"
    for sibling in ("tenant-ab/x", "tenant-a", "tenant-a.txt"):
        with pytest.raises(ScopeNotAllowed):
            decide(TokenRequest(blob=sibling), stored)


def test_list_only_registration_cannot_get_a_blob_token(registration: Registration) -> None:
    with pytest.raises(ScopeNotAllowed):
        decide(TokenRequest(blob="x"), replace(registration, permissions="l"))


def test_list_requested_for_a_blob_is_invalid(registration: Registration) -> None:
    with pytest.raises(InvalidRequest):
        decide(TokenRequest(blob="x", permissions="rl"), registration)


@pytest.mark.parametrize("body", [b"", b"  ", b"{}", b'{"container": null}'])
def test_empty_bodies_mean_defaults(body: bytes) -> None:
    assert parse_token_request(body) == TokenRequest()


def test_permissions_are_put_in_racwdl_order() -> None:
    assert parse_token_request(b'{"permissions": "lwr"}').permissions == "rwl"


@pytest.mark.parametrize("body", [
    b"[]", b"null", b"1", b'"s"', b"{", b"{'a': 1}", b'{"container": 1}', b'{"blob": ""}',
    b'{"blob": "/a"}', b'{"blob": "a/./b"}', b'{"blob": "a/../b"}', b'{"blob": "a\\\\b"}',
    b'{"blob": "a\\u0000b"}', b'{"permissions": ""}', b'{"permissions": "rz"}',
    b'{"ttl_minutes": 0}', b'{"ttl_minutes": -5}', b'{"ttl_minutes": 2.0}',
    b'{"ttl_minutes": "10"}', b'{"ttl_minutes": false}', b'{"nope": 1}',
    b"\xff\xfe", b"[" * 100_000, b'{"a":' * 2000,
    b'{"ttl_minutes": 1' + b"0" * 5000 + b"}",
    b" " * (MAX_BODY_BYTES + 1) + b"{}",
])
def test_malformed_bodies_are_invalid_request(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_token_request(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())
       | st.fixed_dictionaries({}, optional={
           "container": st.text(max_size=10) | st.integers(), "blob": st.text(max_size=20),
           "permissions": st.text(alphabet="racwdlxyz", max_size=7),
           "ttl_minutes": st.integers(-5, 100) | st.booleans() | st.floats(allow_nan=False),
       }).map(lambda v: json.dumps(v).encode()))
def test_any_body_gives_a_grant_or_a_spec_refusal(pki: Pki, body: bytes) -> None:
    registration = Registration.for_certificate(pki.client.certificate, container="reports",
                                                permissions="rwl", max_ttl_minutes=30)
    try:
        grant = decide_scope(parse_token_request(body), registration,
                             default_ttl_minutes=15, max_ttl_minutes=60)
    except Refusal as refusal:
        assert refusal.code in {"invalid_request", "scope_not_allowed"}
    else:
        assert grant.container == "reports"
        assert set(grant.permissions) <= set("rwl")
        assert 1 <= grant.ttl_minutes <= 30
        assert grant.blob is None or "l" not in grant.permissions
