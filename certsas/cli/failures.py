"""A storage failure as one line that names the endpoint, never a traceback (SPEC §6).

The endpoint (``http://127.0.0.1:10002/devstoreaccount1``, ``https://acct.table.core.
windows.net``) is what an operator needs to see which account or emulator was meant;
it holds no secret (a connection string's key and a SAS never reach it).
"""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)


def describe(exc: AzureError, endpoint: str) -> str:
    """``exc``, raised by a call to table storage at ``endpoint``, as one line."""
    kind = type(exc).__name__
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        # Refused, unresolvable, timed out, or the connection dropped mid-answer.
        return f"cannot reach table storage at {endpoint} ({kind})"
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        code = getattr(exc, "error_code", None) or exc.reason or ""
        hint = ""
        if exc.status_code == 403:
            hint = ": this identity lacks a role on the table (Storage Table Data Contributor)"
        return f"table storage at {endpoint} answered {exc.status_code} {code}{hint}".rstrip()
    if isinstance(exc, ClientAuthenticationError):
        # DefaultAzureCredential found no identity (CredentialUnavailableError and kin).
        return (f"cannot get a token for table storage at {endpoint} ({kind}): sign in with "
                "`az login`, or set AZURE_CLIENT_ID for a user-assigned identity")
    return f"table storage at {endpoint} failed ({kind})"
