"""The benchmark's TLS certificate: one self-signed certificate for 127.0.0.1 and localhost.

The same file is the server's certificate and the client's ``ca_file``, as
for an organisation's mail server with a private certificate. RSA 2048, the
key most relays present.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Certificate:
    cert: Path  # PEM certificate; also the CA file clients verify against
    key: Path  # PEM private key (PKCS8, unencrypted)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """What a careful client does: verify the chain and the host name against this CA file."""
        return ssl.create_default_context(cafile=str(self.cert))


def certificate(folder: Path) -> Certificate:
    """The certificate in ``folder``, made on first use and again when less than a day is left."""
    found = Certificate(folder / "bench-cert.pem", folder / "bench-key.pem")
    if found.cert.exists() and found.key.exists() and _days_left(found.cert) > 1:
        return found
    _make(found)
    return found


def _days_left(cert: Path) -> float:
    from cryptography import x509

    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    left = loaded.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left.total_seconds() / 86400


def _make(where: Certificate) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        # A trust anchor that is also the server's certificate: a CA as far as the verifier is concerned.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    where.cert.parent.mkdir(parents=True, exist_ok=True)
    tmp_key = where.key.with_name(where.key.name + ".tmp")
    tmp_key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tmp_key.chmod(0o600)
    tmp_cert = where.cert.with_name(where.cert.name + ".tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp_key.replace(where.key)
    tmp_cert.replace(where.cert)
