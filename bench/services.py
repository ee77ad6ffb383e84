"""What the benchmark runs against, all on 127.0.0.1: a PKI, our OCSP responder, a real Azurite.

The client certificate names the responder in its AIA extension, is registered in
a fresh registry table, and the settings are those of SPEC §3 with
``REVOCATION_MODE=require`` and every cache at its default.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from azure.data.tables import TableServiceClient

from certsas.devtools.ocsp_responder import OcspResponder
from certsas.devtools.pki import CertificateAuthority, Issued
from certsas.registration import Registration
from certsas.registry import TableRegistry
from tests.support.azurite import Azurite, free_port

HEADER = "X-ARR-ClientCert"
CONTAINER = "reports"


@dataclass(frozen=True)
class Services:
    azurite: Azurite
    responder: OcspResponder
    root: CertificateAuthority
    issuing: CertificateAuthority
    client: Issued
    cert_table: str
    audit_table: str

    @property
    def trust_bundle(self) -> str:
        return (self.issuing.issued.pem + self.root.issued.pem).decode("ascii")

    @property
    def header_value(self) -> str:
        """What App Service forwards: base64 DER."""
        return headers_of(self.client)[HEADER]

    @property
    def headers(self) -> dict[str, str]:
        return headers_of(self.client)

    @property
    def env(self) -> dict[str, str]:
        """The app settings (SPEC §3); caches at their defaults."""
        return {
            "TRUSTED_CA_CERTS": self.trust_bundle,
            "STORAGE_CONNECTION_STRING": self.azurite.connection_string,
            "CERT_TABLE_NAME": self.cert_table,
            "AUDIT_TABLE_NAME": self.audit_table,
            "CLIENT_CERT_HEADER": HEADER,
            "REVOCATION_MODE": "require",
        }


def headers_of(issued: Issued) -> dict[str, str]:
    """The request headers App Service forwards for ``issued``: its DER in base64."""
    return {HEADER: base64.b64encode(issued.der).decode("ascii")}


@contextmanager
def running_services(workdir: Path) -> Iterator[Services]:
    """Start the responder and Azurite, register the client; stop both on the way out."""
    root = CertificateAuthority.root("certsas bench root CA")
    issuing = root.intermediate("certsas bench issuing CA")
    with ExitStack() as stack:
        # Port 0: the responder picks a free one, and the certificate names it afterwards.
        responder = OcspResponder(issuer=issuing.certificate, issuer_key=issuing.key).start()
        stack.callback(responder.stop)
        client = issuing.issue("certsas-bench-client", ocsp_url=responder.url)
        azurite = Azurite(free_port(), free_port(), workdir)
        azurite.start()
        stack.callback(azurite.stop)
        suffix = os.urandom(4).hex()
        services = Services(azurite, responder, root, issuing, client,
                            cert_table=f"BenchCerts{suffix}", audit_table=f"BenchAudit{suffix}")
        tables = TableServiceClient.from_connection_string(azurite.connection_string)
        tables.create_table(services.cert_table)
        tables.create_table(services.audit_table)
        TableRegistry(tables.get_table_client(services.cert_table)).put(
            Registration.for_certificate(client.certificate, container=CONTAINER, permissions="rl")
        )
        yield services
