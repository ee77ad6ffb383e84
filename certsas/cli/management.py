"""The one Azure Resource Manager call certsas makes: revoke a storage account's user
delegation keys (``revokeUserDelegationKeys``), with the operator's own credential.

Every failure is a :class:`CliError` of one line that says what was (not) done; a 403
names the permission and the built-in role that holds it.
https://learn.microsoft.com/rest/api/storagerp/storage-accounts/revoke-user-delegation-keys
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import quote

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError

from certsas.cli.errors import CliError
from certsas.sas import is_loopback_http

DEFAULT_MANAGEMENT_URL = "https://management.azure.com"
# A generally available Microsoft.Storage API version that has the operation.
API_VERSION = "2023-05-01"
ACTION = "Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action"
# The narrowest built-in role whose actions (Microsoft.Storage/storageAccounts/*) include it.
ROLE = "Storage Account Contributor"
TIMEOUT_SECONDS = 30.0


def management_endpoint(value: str | None) -> str:
    """``AZURE_RESOURCE_MANAGER_URL``, or the public cloud's. A bearer token never travels
    in clear: plain http is accepted only on this machine (a test stand-in)."""
    endpoint = (value or "").strip().rstrip("/") or DEFAULT_MANAGEMENT_URL
    if not (endpoint.lower().startswith("https://") or is_loopback_http(endpoint)):
        raise CliError("AZURE_RESOURCE_MANAGER_URL must be an https:// URL "
                       "(e.g. https://management.usgovcloudapi.net)")
    return endpoint


def object_id(token: str) -> str | None:
    """The ``oid`` claim of an Entra ID access token (who acted), if it has one. Read,
    not verified: the management API verified it; this only names the operator."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        oid = claims.get("oid")
    except (IndexError, ValueError, binascii.Error, AttributeError):
        return None
    return oid if isinstance(oid, str) and oid else None


class ManagementApi:
    """Azure Resource Manager at ``endpoint``, as the holder of ``credential``."""

    def __init__(self, endpoint: str, credential: TokenCredential, *,
                 timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self._endpoint = endpoint
        self._credential = credential
        self._timeout = timeout_seconds

    def revoke_user_delegation_keys(self, subscription: str, resource_group: str,
                                    account: str) -> str | None:
        """Revoke every user delegation key of ``account``; the operator's object id."""
        try:
            token = self._credential.get_token(f"{self._endpoint}/.default").token
        except ClientAuthenticationError as exc:
            raise CliError(f"cannot get a token for the management API at {self._endpoint} "
                           f"({type(exc).__name__}): sign in with `az login`; nothing was "
                           "revoked") from None
        url = (f"{self._endpoint}/subscriptions/{quote(subscription, safe='')}/resourceGroups/"
               f"{quote(resource_group, safe='')}/providers/Microsoft.Storage/storageAccounts/"
               f"{account}/revokeUserDelegationKeys?api-version={API_VERSION}")
        try:
            response = requests.post(url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise CliError(f"cannot reach the management API at {self._endpoint} "
                           f"({type(exc).__name__}): nothing was revoked") from None
        if response.status_code == 200:
            return object_id(token)
        code = _error_code(response)
        if response.status_code == 403:
            raise CliError(
                f"the management API refused ({code or 403}): revoking needs {ACTION}, which "
                f"the built-in role {ROLE} holds; an owner of account {account} must give it "
                "to you (never to certsas's own identity); nothing was revoked")
        if response.status_code == 404:
            raise CliError(f"no storage account {account} in resource group {resource_group} "
                           f"of subscription {subscription} ({code or 404}); nothing was revoked")
        raise CliError(f"the management API answered {response.status_code} {code}".rstrip()
                       + ": nothing was revoked and no epoch written; run the command again")


def _error_code(response: requests.Response) -> str:
    """ARM's ``{"error": {"code": ...}}``, reduced to a safe token."""
    try:
        code = str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""
    return code if code.isascii() and code.replace(".", "").isalnum() and len(code) < 80 else ""
