"""Revocation URLs (SPEC §2a): credentials refused at start-up, query strings never shown."""

from __future__ import annotations

import pytest

from certsas.config import Settings
from certsas.errors import ConfigurationError
from certsas.netfetch import redact_url
from tests.support.pki import Pki


def _env(pki: Pki, **extra: str) -> dict[str, str]:
    return {"TRUSTED_CA_CERTS": pki.trust_bundle,
            "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", **extra}


@pytest.mark.parametrize("setting", ["CRL_URL", "OCSP_RESPONDER_URL"])
@pytest.mark.parametrize("url", [
    "http://certsas:Sup3rSecret@crl.example/ca.crl", "https://Sup3rSecret@crl.example/ca.crl",
    "http://certsas:Sup3rSecret@crl.example", "HTTP://certsas:Sup3rSecret@crl.example:8080/",
])
def test_a_url_with_credentials_is_refused_at_start_naming_the_setting_not_the_value(
        pki: Pki, setting: str, url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(_env(pki, **{setting: url}))
    assert caught.value.setting == setting
    assert "credentials" in str(caught.value)
    assert "Sup3rSecret" not in str(caught.value) and "certsas:" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://crl.example/a@b.crl", "http://crl.example/x?u=a@b",
                                 "http://crl.example/x#a@b"])
def test_an_at_sign_after_the_host_is_no_credential(pki: Pki, url: str) -> None:
    assert Settings.from_env(_env(pki, CRL_URL=url)).revocation.crl_url == url


@pytest.mark.parametrize(("url", "shown"), [
    ("https://acct.blob.core.windows.net/crl/ca.crl?sv=2024-11-04&sig=AbC%2Fsecret",
     "https://acct.blob.core.windows.net/crl/ca.crl?<query hidden>"),
    ("http://user:pw@crl.example:8080/ca.crl#frag", "http://crl.example:8080/ca.crl"),
    ("http://crl.example/ca.crl", "http://crl.example/ca.crl"),
    ("http://crl.example/a b\x1b[31m.crl", "http://crl.example/a%20b%1B[31m.crl"),
    ("http://[::1/ca.crl", "<a URL that does not parse>"),
    ("http://crl.example:99999/ca.crl", "<a URL that does not parse>"),
])
def test_redact_url_drops_query_user_info_and_unprintable_text(url: str, shown: str) -> None:
    assert redact_url(url) == shown
