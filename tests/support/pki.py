"""The test PKIs: a root, an issuing CA, clients, a stranger CA; and one with OCSP URLs."""

from __future__ import annotations

from dataclasses import dataclass

from certsas.clientcert import PresentedCertificate
from certsas.devtools.pki import CertificateAuthority, Issued
from certsas.verification import VerifiedCertificate


def verified_under(issued: Issued, issuing: CertificateAuthority,
                   root: CertificateAuthority) -> VerifiedCertificate:
    """What the chain validator hands the revocation check: the leaf, its CA, the root."""
    return VerifiedCertificate(PresentedCertificate.from_der(issued.der),
                               (issued.certificate, issuing.certificate, root.certificate))


@dataclass(frozen=True)
class Pki:
    """A root, an issuing CA under it, a client, and a stranger CA nobody trusts."""

    root: CertificateAuthority
    issuing: CertificateAuthority
    client: Issued
    stranger: CertificateAuthority

    @property
    def trust_bundle(self) -> str:
        return (self.issuing.issued.pem + self.root.issued.pem).decode("ascii")

    def verified(self, issued: Issued) -> VerifiedCertificate:
        return verified_under(issued, self.issuing, self.root)


@dataclass(frozen=True)
class OcspPki:
    """The test PKI's issuing CA with OCSP: clients whose AIA names ``url``, and signers."""

    root: CertificateAuthority
    issuing: CertificateAuthority
    stranger: CertificateAuthority
    port: int
    good: Issued  # known to the responder, not revoked
    revoked: Issued
    unknown: Issued  # not known to the responder
    no_aia: Issued  # names no OCSP responder
    signer: Issued  # delegated responder: issued by the issuing CA, id-kp-OCSPSigning

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def verified(self, issued: Issued) -> VerifiedCertificate:
        return verified_under(issued, self.issuing, self.root)
