"""The body parser and the scope decision (SPEC §1 scope rules)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsas.errors import InvalidRequest, Refusal, ScopeNotAllowed
from certsas.grants import AccessGrant
from certsas.registration import Registration
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
    prefixed = replace(registration, grants=(replace(registration.grants[0], prefix="tenant-a/"),))
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
    # An earlier version's entity: no Grants, and the prefix in BlobPrefix.
    entity = {**registration.to_entity(), "BlobPrefix": "tenant-a"}
    del entity["Grants"]
    stored = Registration.from_entity(entity)
    assert stored.grants[0].prefix == "tenant-a/"
    assert decide(TokenRequest(blob="tenant-a/x"), stored)[1] == "tenant-a/x"
    for sibling in ("tenant-ab/x", "tenant-a", "tenant-a.txt"):
        with pytest.raises(ScopeNotAllowed):
            decide(TokenRequest(blob=sibling), stored)


def test_list_only_registration_cannot_get_a_blob_token(registration: Registration) -> None:
    with pytest.raises(ScopeNotAllowed):
        decide(TokenRequest(blob="x"),
               replace(registration, grants=(replace(registration.grants[0], permissions="l"),)))


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


# --- several grants (SPEC §4, §1 scope rules) ------------------------------------------


def granted(pki: Pki, *grants: AccessGrant) -> Registration:
    return Registration.with_grants(pki.client.certificate, grants)


def test_two_prefixes_in_one_container_each_serve_their_own_blobs(pki: Pki) -> None:
    r = granted(pki, AccessGrant.of("partner", prefix="outbox/", permissions="r"),
                AccessGrant.of("partner", prefix="inbox/", permissions="cw"))
    assert decide(TokenRequest(blob="outbox/a.csv"), r) == ("partner", "outbox/a.csv", "r", 15)
    assert decide(TokenRequest(blob="inbox/b.csv"), r) == ("partner", "inbox/b.csv", "cw", 15)
    # Each grant's letters are its own: writing the outbox, reading the inbox are refused.
    with pytest.raises(ScopeNotAllowed, match="'w'"):
        decide(TokenRequest(blob="outbox/a.csv", permissions="w"), r)
    with pytest.raises(ScopeNotAllowed, match="'r'"):
        decide(TokenRequest(blob="inbox/b.csv", permissions="r"), r)
    # Neither grant is container-wide, and a blob elsewhere is outside both.
    with pytest.raises(ScopeNotAllowed, match="all have a prefix"):
        decide(TokenRequest(), r)
    with pytest.raises(ScopeNotAllowed, match="outside every granted prefix"):
        decide(TokenRequest(blob="other/c.csv"), r)


def test_the_longest_covering_prefix_wins_and_its_cap_applies(pki: Pki) -> None:
    r = granted(pki, AccessGrant.of("partner", permissions="rl", max_ttl_minutes=60),
                AccessGrant.of("partner", prefix="data/", permissions="rw", max_ttl_minutes=30),
                AccessGrant.of("partner", prefix="data/secret/", permissions="r",
                               max_ttl_minutes=5))
    grant = decide_scope(TokenRequest(blob="data/secret/k"), r, default_ttl_minutes=15,
                         max_ttl_minutes=60)
    assert (grant.permissions, grant.ttl_minutes, grant.prefix) == ("r", 5, "data/secret/")
    grant = decide_scope(TokenRequest(blob="data/x"), r, default_ttl_minutes=15,
                         max_ttl_minutes=60)
    assert (grant.permissions, grant.ttl_minutes, grant.prefix) == ("rw", 15, "data/")
    assert decide(TokenRequest(blob="top.txt"), r) == ("partner", "top.txt", "r", 15)
    assert decide(TokenRequest(), r) == ("partner", None, "rl", 15)
    # The nested grant replaces the wider ones under its prefix; it does not add to them.
    with pytest.raises(ScopeNotAllowed, match="'w'"):
        decide(TokenRequest(blob="data/secret/k", permissions="w"), r)
    with pytest.raises(ScopeNotAllowed, match="cap 5"):
        decide(TokenRequest(blob="data/secret/k", ttl_minutes=6), r)
    # "data/secretive" is a sibling of the folder "data/secret/", served by "data/".
    assert decide(TokenRequest(blob="data/secretive", permissions="w"), r)[2] == "w"


def test_two_containers_need_the_container_named(pki: Pki) -> None:
    r = granted(pki, AccessGrant.of("reports", permissions="rl"),
                AccessGrant.of("uploads", permissions="cw", max_ttl_minutes=10))
    assert decide(TokenRequest(container="reports"), r) == ("reports", None, "rl", 15)
    assert decide(TokenRequest(container="uploads"), r) == ("uploads", None, "cw", 10)
    with pytest.raises(ScopeNotAllowed, match="no grant on the requested container"):
        decide(TokenRequest(container="other"), r)
    with pytest.raises(ScopeNotAllowed, match="'l'"):
        decide(TokenRequest(container="uploads", permissions="l"), r)
    for body in (b"", b"{}", b'{"blob": "x"}', b'{"permissions": "r"}'):
        with pytest.raises(InvalidRequest, match="name several"):
            decide(parse_token_request(body), r)


def test_several_grants_on_one_container_need_no_container_in_the_body(pki: Pki) -> None:
    r = granted(pki, AccessGrant.of("partner", prefix="a/"), AccessGrant.of("partner"))
    assert decide(parse_token_request(b""), r)[0] == "partner"


def test_grants_are_unique_per_container_and_prefix_and_never_none(pki: Pki) -> None:
    with pytest.raises(ValueError, match="same container and prefix"):
        granted(pki, AccessGrant.of("a1b", permissions="r"), AccessGrant.of("a1b", permissions="w"))
    with pytest.raises(ValueError, match="at least one grant"):
        granted(pki)


def test_grants_round_trip_through_the_entity_with_the_first_in_the_old_columns(
        pki: Pki) -> None:
    r = granted(pki, AccessGrant.of("partner", prefix="out/", permissions="r"),
                AccessGrant.of("other", permissions="rwl", max_ttl_minutes=7))
    r = replace(r, allow_rotation=True, rotated_from="A" * 64)
    entity = r.to_entity()
    assert Registration.from_entity(entity) == r
    # What a version before grants reads: the first grant, no more.
    assert (entity["Container"], entity["BlobPrefix"], entity["Permissions"],
            entity["MaxTtlMinutes"]) == ("partner", "out/", "r", 60)


@pytest.mark.parametrize("grants", ["[]", "{}", "[1]", '[{"container": "c"}]',
                                    '[{"container": "c", "permissions": "z", '
                                    '"max_ttl_minutes": 5}]', "[" * 5000 + "]" * 5000])
def test_a_malformed_grants_property_is_a_malformed_entity(registration: Registration,
                                                           grants: str) -> None:
    with pytest.raises((KeyError, ValueError, TypeError)):
        Registration.from_entity({**registration.to_entity(), "Grants": grants})


def test_the_serving_grant_may_be_the_last_of_twenty(pki: Pki) -> None:
    grants = [AccessGrant.of("partner", prefix=f"p{i:02d}/") for i in range(19)]
    r = granted(pki, *grants, AccessGrant.of("partner", prefix="p19/", permissions="w"))
    assert decide(TokenRequest(blob="p19/x"), r)[2] == "w"
