"""A storage failure as one line that names the endpoint, never a traceback (SPEC §6).

The endpoint (``http://127.0.0.1:10002/devstoreaccount1``, ``https://acct.table.core.
windows.net``) is what an operator needs to see which account or emulator was meant;
it holds no secret (a connection string's key and a SAS never reach it).
"""

from __future__ import annotations

import json

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)


def describe(exc: AzureError, endpoint: str, service: str = "table") -> str:
    """``exc``, raised by a call to ``service`` storage at ``endpoint``, as one line."""
    kind = type(exc).__name__
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        # Refused, unresolvable, timed out, or the connection dropped mid-answer.
        return f"cannot reach {service} storage at {endpoint} ({kind})"
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        code = error_code(exc) or exc.reason or ""
        hint = ""
        if exc.status_code == 403:
            # Which role depends on the table: the registry needs Storage Table Data
            # Contributor, TokenAudit only the append-only custom role (docs/deploy.md).
            hint = (f": this identity lacks a data role on that {service} (docs/deploy.md, "
                    "Roles, names the one each needs)" if service == "table" else
                    f": this identity lacks a data role on the {service} service "
                    "(Storage Blob Data Contributor)")
        return f"{service} storage at {endpoint} answered {exc.status_code} {code}{hint}".rstrip()
    if isinstance(exc, ClientAuthenticationError):
        # DefaultAzureCredential found no identity (CredentialUnavailableError and kin).
        return (f"cannot get a token for {service} storage at {endpoint} ({kind}): sign in with "
                "`az login`, or set AZURE_CLIENT_ID for a user-assigned identity")
    return f"{service} storage at {endpoint} failed ({kind})"


def error_code(exc: HttpResponseError) -> str | None:
    """The storage error code (``TableNotFound``, ``AuthorizationPermissionMismatch``).

    The Tables SDK sets ``error_code`` on some errors only (not on ``create_entity``'s), and
    as an enum whose ``str`` is its Python name; the service always says it in the
    ``x-ms-error-code`` header or the OData error body.
    """
    code = getattr(exc, "error_code", None)
    if code:
        return str(getattr(code, "value", code))
    response = exc.response
    if response is None:
        return None
    header = getattr(response, "headers", {}).get("x-ms-error-code")
    if header:
        return str(header)
    try:
        body = json.loads(response.text())
        return str(body["odata.error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None
