"""certsas.client: for the programs that hold a certificate and use the tokens (SPEC §6a).

    from certsas.client import CertSas, Refused
    sas = CertSas("https://<app>.azurewebsites.net/api/token", cert="client.pem", key="client.key")
    container = sas.container_client()  # an azure.storage.blob.ContainerClient that stays authorised

Installed without the service's dependencies (requirements-client.txt, docs/client.md); never
in the deployed package.
"""

from __future__ import annotations

from certsas.client.core import CertSas
from certsas.client.errors import (
    BodyNotReplayable,
    CertSasError,
    IdentityError,
    Refused,
    StorageAuthenticationFailed,
    Unreachable,
)
from certsas.client.identity import Identity, load_identity
from certsas.client.rotation import Rotated, rotate
from certsas.client.tokens import Token

__all__ = [
    "BodyNotReplayable",
    "CertSas",
    "CertSasError",
    "Identity",
    "IdentityError",
    "Refused",
    "Rotated",
    "StorageAuthenticationFailed",
    "Token",
    "Unreachable",
    "load_identity",
    "rotate",
]
