"""Signing the lean Table client's requests: the bearer token's renewal (refresh_on, a
failed renewal, a 401 that needs a token the credential did not cache) and challenges."""

from __future__ import annotations

import base64
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import ClientAuthenticationError

from certsas.tableauth import BearerToken, SharedKey, challenge_claims
from tests.support.credentials import CachingCredential

CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
CAE_CHALLENGE = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common'
                 '/oauth2/authorize", error="insufficient_claims", claims="'
                 + base64.urlsafe_b64encode(CLAIMS.encode()).decode().rstrip("=") + '"')


def bearer(credential: CachingCredential) -> BearerToken:
    return BearerToken(credential, clock=credential.clock, refresh_margin=300)


def header(token: BearerToken) -> str:
    return token.authorization("GET", "/t", "", "date")


def test_a_token_is_fetched_once_and_renewed_five_minutes_before_expiry() -> None:
    credential = CachingCredential(lifetime=3600)
    token = bearer(credential)
    assert header(token) == "Bearer entra-token-1"
    credential.now += 3000  # 600 s left: still good
    assert header(token) == "Bearer entra-token-1"
    credential.now += 301  # inside the margin: renewed before the service would refuse it
    assert header(token) == "Bearer entra-token-2"
    assert credential.requests == [{}, {}]


def test_refresh_on_is_honoured_when_the_credential_gives_one() -> None:
    # Managed identity tokens live ~24 h and say when to renew (refresh_in, about half way).
    credential = CachingCredential(lifetime=86_400, refresh_in=43_200)
    token = bearer(credential)
    assert header(token) == "Bearer entra-token-1"
    credential.now += 43_199
    assert header(token) == "Bearer entra-token-1"
    credential.now += 2  # past refresh_on, hours before expires_on - 300 s
    assert header(token) == "Bearer entra-token-2"


def test_a_failed_renewal_keeps_a_valid_token_and_an_expired_one_fails(
        caplog: pytest.LogCaptureFixture) -> None:
    credential = CachingCredential(lifetime=86_400, refresh_in=43_200)
    token = bearer(credential)
    header(token)
    credential.now += 50_000
    credential.failing = True
    with caplog.at_level(logging.WARNING, logger="certsas.tables"):
        assert header(token) == "Bearer entra-token-1"  # valid for hours yet
    assert "not renewed yet (ClientAuthenticationError)" in caplog.text
    credential.now += 86_400 - 50_000 - 30  # 30 s left: too close to send
    with pytest.raises(ClientAuthenticationError):
        header(token)
    credential.failing = False
    assert header(token) == "Bearer entra-token-2"


def test_after_a_401_the_token_is_one_the_credential_did_not_cache() -> None:
    credential = CachingCredential()
    token = bearer(credential)
    sent = header(token)
    # Asked plainly, the credential hands back the refused token (azure-identity's cache).
    assert credential.get_token_info("https://storage.azure.com/.default").token == "entra-token-1"
    assert token.refused(sent, None) is True
    assert header(token) == "Bearer entra-token-2"
    assert credential.requests[-1] == {"claims": "{}"}
    # A Continuous Access Evaluation challenge: its own claims are asked for.
    assert token.refused(header(token), CAE_CHALLENGE) is True
    assert credential.requests[-1] == {"claims": CLAIMS}
    assert header(token) == "Bearer entra-token-3"


def test_concurrent_401s_renew_the_token_once() -> None:
    credential = CachingCredential()
    token = bearer(credential)
    sent = header(token)
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda _: token.refused(sent, None), range(8)))
    assert credential.issued == 2
    assert header(token) == "Bearer entra-token-2"


def test_challenge_claims_only_from_an_insufficient_claims_bearer_challenge() -> None:
    assert challenge_claims(CAE_CHALLENGE) == CLAIMS
    assert challenge_claims(None) is None
    assert challenge_claims('Bearer authorization_uri="https://login.microsoftonline.com/t", '
                            'resource_id="https://storage.azure.com"') is None
    assert challenge_claims(CAE_CHALLENGE.replace("insufficient_claims", "invalid_token")) is None
    assert challenge_claims(CAE_CHALLENGE.replace("Bearer", "Basic", 1)) is None
    assert challenge_claims('Bearer error="insufficient_claims", claims="!!!"') is None


def test_a_shared_key_has_nothing_to_renew() -> None:
    assert SharedKey("acct", "a2V5").refused("SharedKey acct:x", None) is False
