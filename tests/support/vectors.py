"""Every CRL in the ``cryptography-vectors`` package, and the certificate that issued it.

The package's version must be cryptography's (requirements-dev.in pins it to the version
requirements.txt locks): the vectors are the ones that cryptography's own parser is tested on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cryptography_vectors
from cryptography import x509

ROOT = Path(cryptography_vectors.__file__).parent
PKITS_CERTIFICATES = ROOT / "x509" / "PKITS_data" / "certs"


@dataclass(frozen=True)
class VectorCrl:
    name: str  # the path inside the package
    body: bytes


@cache
def vector_crls() -> tuple[VectorCrl, ...]:
    """Every ``.crl`` file, every PEM with an ``X509 CRL`` block, every DER ``crl_*`` file."""
    found = []
    for path in sorted(ROOT.rglob("*")):
        if not path.is_file():
            continue
        body = path.read_bytes()
        if (path.suffix == ".crl" or (path.suffix == ".pem" and b"BEGIN X509 CRL" in body)
                or (path.suffix == ".der" and path.name.startswith("crl_"))):
            found.append(VectorCrl(str(path.relative_to(ROOT)), body))
    return tuple(found)


@cache
def certificates_by_subject() -> dict[x509.Name, tuple[x509.Certificate, ...]]:
    """The PKITS certificates that parse, by subject: the CRLs' issuers among them."""
    by_subject: dict[x509.Name, list[x509.Certificate]] = defaultdict(list)
    for path in sorted(PKITS_CERTIFICATES.glob("*.crt")):
        try:
            certificate = x509.load_der_x509_certificate(path.read_bytes())
        except ValueError:
            continue  # a few PKITS certificates are malformed on purpose
        by_subject[certificate.subject].append(certificate)
    return {subject: tuple(certificates) for subject, certificates in by_subject.items()}
