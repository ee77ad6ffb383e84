"""What the client raises. No message or repr ever holds a token, a key or a password.

    CertSasError                       anything certsas.client raises on its own
    ├── IdentityError (ValueError)     the certificate or key files: unreadable, wrong kind, no match
    ├── Unreachable                    certsas could not be asked: network, TLS, timeout, odd answer
    └── Refused                        certsas answered with a refusal: .status, .error, .message

    azure.core.exceptions.ClientAuthenticationError
    └── StorageAuthenticationFailed    Storage kept refusing fresh tokens (403 AuthenticationFailed)
        └── BodyNotReplayable          ... and the request's body could not be sent a second time

The last two come out of the Storage clients' own calls, so ``except HttpResponseError``
(their base) catches them as it catches any other Storage failure.
"""

from __future__ import annotations

from azure.core.exceptions import ClientAuthenticationError

AUTHENTICATION_FAILED = "AuthenticationFailed"


class CertSasError(Exception):
    """Anything certsas.client raises on its own."""


class IdentityError(CertSasError, ValueError):
    """The certificate or key cannot be used; the message names the file and, where it
    helps, the ``openssl`` line that converts it."""


class Unreachable(CertSasError):
    """certsas could not be asked, or gave no answer the client understands."""


class Refused(CertSasError):
    """certsas refused: ``status`` (HTTP), ``error`` (the SPEC's code) and ``message``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}" if message else f"{status} {error}")
        self.status = status
        self.error = error
        self.message = message


class StorageAuthenticationFailed(ClientAuthenticationError):
    """Storage refused the SAS as not authenticated and new tokens did not help.

    Raised without a ``response`` on purpose: azure-storage-blob rewrites the message of an
    error that carries one, and this message is the useful part. ``status_code`` and
    ``error_code`` are set as Storage's own errors set them.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message=message)
        self.status_code = 403
        self.error_code = AUTHENTICATION_FAILED


class BodyNotReplayable(StorageAuthenticationFailed):
    """A 403 AuthenticationFailed on a request whose body was a one-way stream."""
