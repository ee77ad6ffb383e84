"""A real ``openssl ca`` directory for a CA of ours, so CRLs come from an independent issuer."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from certsas.devtools.pki import CertificateAuthority

CONFIG = """\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 1
unique_subject = no
crl_extensions = crl_ext

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""


class OpensslCa:
    """``index.txt`` lines for revoked certificates, then ``openssl ca -gencrl``."""

    def __init__(self, ca: CertificateAuthority, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.pem").write_bytes(ca.issued.pem)
        (directory / "ca.key").write_bytes(ca.issued.key_pem)
        (directory / "index.txt").write_text("")
        (directory / "crlnumber").write_text("1000\n")
        (directory / "openssl.cnf").write_text(CONFIG.format(dir=directory))

    def revoke(self, certificate: x509.Certificate, reason: str = "keyCompromise") -> None:
        """What ``openssl ca -revoke -crl_reason`` writes, without needing the certificate file."""
        expires = certificate.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
        revoked = (datetime.now(UTC) - timedelta(hours=1)).strftime("%y%m%d%H%M%SZ")
        subject = "/" + "/".join(f"{attr.oid._name}={attr.value!s}"
                                 for attr in certificate.subject)
        serial = f"{certificate.serial_number:X}"
        serial = serial.zfill(len(serial) + len(serial) % 2)  # openssl reads whole bytes only
        line = f"R\t{expires}\t{revoked},{reason}\t{serial}\tunknown\t{subject}\n"
        with (self.directory / "index.txt").open("a") as index:
            index.write(line)

    def gencrl(self, *, md: str = "sha256") -> bytes:
        """A DER CRL made by ``openssl ca -gencrl`` (converted by ``openssl crl``)."""
        pem, der = self.directory / "crl.pem", self.directory / "crl.der"
        subprocess.run(["openssl", "ca", "-config", str(self.directory / "openssl.cnf"),
                        "-gencrl", "-md", md, "-out", str(pem)],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "crl", "-in", str(pem), "-outform", "DER", "-out", str(der)],
                       check=True, capture_output=True)
        return der.read_bytes()
