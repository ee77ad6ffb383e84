"""A throw-away PKI for local work and tests: CAs, client, OCSP-signer and server certificates.

Nothing here is used on the token path. It exists so that developers (``certsas
dev-pki``) and the test suite build certificates the same way, with keyword
arguments for every deviation a test needs (expired, wrong EKU, no SAN, ...).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
# What a client certificate may hold besides: the CAs here sign with ECDSA or RSA only.
LeafKey = PrivateKey | ed25519.Ed25519PrivateKey

CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
OCSP_SIGNING = ExtendedKeyUsageOID.OCSP_SIGNING


def new_key(kind: str = "ec") -> PrivateKey:
    """A fresh key: P-256 by default (fast), or RSA-2048 with ``kind="rsa"``."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def new_leaf_key(kind: str = "ec") -> LeafKey:
    """:func:`new_key`, or an Ed25519 key with ``kind="ed25519"``."""
    return ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else new_key(kind)


def name(common_name: str, organization: str = "certsas dev") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: LeafKey = field(repr=False)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA that issues certificates; ``root()`` makes a self-signed one."""

    issued: Issued

    @property
    def certificate(self) -> x509.Certificate:
        return self.issued.certificate

    @property
    def key(self) -> PrivateKey:
        key = self.issued.key
        if isinstance(key, ed25519.Ed25519PrivateKey):  # CAs are made with new_key() only
            raise TypeError("this PKI's CAs sign with ECDSA or RSA")
        return key

    @classmethod
    def root(
        cls,
        common_name: str = "certsas dev root CA",
        *,
        key: PrivateKey | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> CertificateAuthority:
        key = key or new_key()
        subject = name(common_name)
        start, end = _validity(not_before, not_after, days=3650)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )
        for ext, critical in _ca_extensions(key, key, path_length=None):
            builder = builder.add_extension(ext, critical=critical)
        return cls(Issued(builder.sign(key, hashes.SHA256()), key))

    def intermediate(
        self,
        common_name: str = "certsas dev issuing CA",
        *,
        key: PrivateKey | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> CertificateAuthority:
        key = key or new_key()
        start, end = _validity(not_before, not_after, days=1825)
        builder = self._builder(name(common_name), key, start, end, serial=None)
        for ext, critical in _ca_extensions(key, self.key, path_length=0):
            builder = builder.add_extension(ext, critical=critical)
        return CertificateAuthority(Issued(builder.sign(self.key, hashes.SHA256()), key))

    def issue(
        self,
        common_name: str,
        *,
        eku: Sequence[x509.ObjectIdentifier] | None = (CLIENT_AUTH,),
        dns_names: Iterable[str] = (),
        ip_addresses: Iterable[str] = (),
        ocsp_url: str | None = None,
        crl_url: str | None = None,
        key: LeafKey | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        serial: int | None = None,
        ocsp_no_check: bool = False,
        extra_extensions: Iterable[x509.ExtensionType] = (),
        organization: str = "certsas dev",
        subject: x509.Name | None = None,
    ) -> Issued:
        """An end-entity certificate. ``eku=None`` leaves the EKU extension out; ``subject``
        replaces the name made of ``common_name`` and ``organization``."""
        key = key or new_key()
        start, end = _validity(not_before, not_after, days=365)
        builder = self._builder(subject or name(common_name, organization), key, start, end,
                                serial)
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if ocsp_url:
            access = x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
            )
            builder = builder.add_extension(x509.AuthorityInformationAccess([access]), False)
        if crl_url:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None,
                                           None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        if ocsp_no_check:
            builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
        for extension in extra_extensions:
            builder = builder.add_extension(extension, critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), key)

    def successor(self, current: Issued, *, key: LeafKey | None = None,
                  not_after: datetime | None = None) -> Issued:
        """A renewal of ``current`` (SPEC §4a): the same subject, EKU and revocation URLs, a
        new key, and an end a year from now, or a day after ``current``'s if that is later
        (a successor must end later than the certificate it replaces)."""
        old = current.certificate
        end = not_after or max(datetime.now(UTC) + timedelta(days=365),
                               old.not_valid_after_utc + timedelta(days=1))
        return self.issue(common_name(old), subject=old.subject, key=key, not_after=end,
                          eku=_eku(old),
                          ocsp_url=_ocsp_url(old), crl_url=_crl_url(old))

    def crl(
        self,
        revoked: Iterable[tuple[int, x509.ReasonFlags | None]] = (),
        *,
        this_update: datetime | None = None,
        next_update: datetime | None = None,
        extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
        entry_extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
        signing_key: PrivateKey | None = None,
    ) -> bytes:
        """A DER CRL of this CA listing ``revoked`` (serial, reason); valid a day by default.

        ``entry_extensions`` go on every entry; ``signing_key`` signs instead of the CA's key.
        """
        now = datetime.now(UTC)
        start = this_update or now - timedelta(minutes=1)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(start)
            .next_update(next_update or start + timedelta(days=1))
            .add_extension(x509.CRLNumber(int(start.timestamp())), critical=False)
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        entry_extra = list(entry_extensions)
        for serial, reason in revoked:
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(
                start - timedelta(hours=1))
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            for extension, critical in entry_extra:
                entry = entry.add_extension(extension, critical=critical)
            builder = builder.add_revoked_certificate(entry.build())
        crl = builder.sign(signing_key or self.key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def _builder(
        self,
        subject: x509.Name,
        key: LeafKey,
        start: datetime,
        end: datetime,
        serial: int | None,
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )


@dataclass(frozen=True)
class DevPki:
    """What ``certsas dev-pki`` writes: everything a local run needs."""

    root: CertificateAuthority
    issuing: CertificateAuthority
    ocsp_signer: Issued
    client: Issued
    revoked_client: Issued
    untrusted_client: Issued
    server: Issued
    crl: bytes  # the issuing CA's CRL (DER), listing revoked_client
    client_next: Issued  # the client's successor: same subject, new key, ends later (§4a)

    # A week: long enough to reuse a dev PKI, short enough that staleness is seen.
    CRL_DAYS = 7

    @property
    def trust_bundle(self) -> bytes:
        """The value for ``TRUSTED_CA_CERTS``: issuing CA, then root."""
        return self.issuing.issued.pem + self.root.issued.pem

    @classmethod
    def create(cls, ocsp_url: str, crl_url: str | None = None) -> DevPki:
        """Client certificates name ``ocsp_url`` (AIA) and, if given, ``crl_url`` (CDP)."""
        root = CertificateAuthority.root()
        issuing = root.intermediate()
        stranger = CertificateAuthority.root("certsas dev untrusted CA")
        revoked_client = issuing.issue("certsas-dev-revoked-client", ocsp_url=ocsp_url,
                                       crl_url=crl_url)
        client = issuing.issue("certsas-dev-client", ocsp_url=ocsp_url, crl_url=crl_url)
        now = datetime.now(UTC)
        return cls(
            root=root,
            issuing=issuing,
            ocsp_signer=issuing.issue("certsas dev OCSP signer", eku=(OCSP_SIGNING,),
                                      ocsp_no_check=True),
            client=client,
            revoked_client=revoked_client,
            untrusted_client=stranger.issue("certsas-dev-client", ocsp_url=ocsp_url,
                                            crl_url=crl_url),
            server=issuing.issue("localhost", eku=(SERVER_AUTH,), dns_names=["localhost"],
                                 ip_addresses=["127.0.0.1"]),
            crl=issuing.crl([(revoked_client.certificate.serial_number,
                              x509.ReasonFlags.key_compromise)],
                            this_update=now - timedelta(minutes=1),
                            next_update=now + timedelta(days=cls.CRL_DAYS)),
            client_next=issuing.successor(client),
        )

    def files(self) -> dict[str, tuple[bytes, str]]:
        """File name → (content, what it is for)."""
        return {
            "root-ca.pem": (self.root.issued.pem, "root CA certificate"),
            "issuing-ca.pem": (self.issuing.issued.pem, "issuing CA that signs the clients"),
            "issuing-ca.key": (self.issuing.issued.key_pem, "issuing CA key (signs OCSP answers too)"),
            "trusted-ca-certs.pem": (self.trust_bundle, "value for TRUSTED_CA_CERTS"),
            "ocsp-signer.pem": (self.ocsp_signer.pem, "delegated OCSP responder certificate"),
            "ocsp-signer.key": (self.ocsp_signer.key_pem, "delegated OCSP responder key"),
            "client.pem": (self.client.pem, "client certificate to register and use"),
            "client.key": (self.client.key_pem, "client key"),
            "client-next.pem": (self.client_next.pem,
                                "the client's successor (same subject, ends later): certsas rotate"),
            "client-next.key": (self.client_next.key_pem, "its key"),
            "revoked-client.pem": (self.revoked_client.pem,
                                   "client certificate the OCSP responder reports revoked"),
            "revoked-client.key": (self.revoked_client.key_pem, "its key"),
            "untrusted-client.pem": (self.untrusted_client.pem, "client certificate from a CA nobody trusts"),
            "untrusted-client.key": (self.untrusted_client.key_pem, "its key"),
            "server.pem": (self.server.pem, "TLS certificate for localhost (certsas serve --tls)"),
            "server.key": (self.server.key_pem, "its key"),
            "issuing-ca.crl": (self.crl, f"issuing CA's CRL (DER, {self.CRL_DAYS} days), "
                                         "revoking revoked-client.pem"),
        }

    def write(self, directory: Path, *, force: bool = False) -> list[tuple[Path, str]]:
        """Write every file; refuse to overwrite an existing one unless ``force``."""
        files = self.files()
        targets = {directory / file_name: value for file_name, value in files.items()}
        existing = [path for path in targets if path.exists()]
        if existing and not force:
            raise FileExistsError(f"{existing[0]} exists (use --force to overwrite)")
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for path, (content, purpose) in targets.items():
            path.write_bytes(content)
            if path.suffix == ".key":
                path.chmod(0o600)
            written.append((path, purpose))
        return written


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _eku(certificate: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    try:
        return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def _ocsp_url(certificate: x509.Certificate) -> str | None:
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    urls = [str(a.access_location.value) for a in access
            if a.access_method == x509.oid.AuthorityInformationAccessOID.OCSP]
    return urls[0] if urls else None


def _crl_url(certificate: x509.Certificate) -> str | None:
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None
    urls = [str(n.value) for p in points for n in (p.full_name or ())]
    return urls[0] if urls else None


def _validity(
    not_before: datetime | None, not_after: datetime | None, *, days: int
) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    start = not_before or now - timedelta(hours=1)
    end = not_after or now + timedelta(days=days)
    return start, end


def _ca_extensions(
    subject_key: PrivateKey, issuer_key: PrivateKey, path_length: int | None
) -> list[tuple[x509.ExtensionType, bool]]:
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            True,
        ),
        (x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False),
    ]

