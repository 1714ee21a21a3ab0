"""TLS for the sandbox: a throwaway CA and a serving certificate, made at start-up.

Real clients treat plain HTTP differently from HTTPS (kubectl sends no credentials over plain
HTTP, so nothing there can be tested as a user other than the admin), and a controller deployed
in a cluster always talks TLS to a CA from its kubeconfig. With `--tls` the sandbox makes its
own CA (ECDSA P-256, cheap to generate) and a certificate for 127.0.0.1, ::1, localhost, the
in-cluster names of the `kubernetes` Service and the listening address, and writes the CA into
the kubeconfig as `certificate-authority-data`. Nothing is written to disk but the kubeconfig:
the key only passes through a private temporary file while the SSL context loads it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DNS_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local")
IP_ADDRESSES = ("127.0.0.1", "::1", "10.96.0.1")
VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes: the CA certificate (for clients), the serving certificate and its key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    return None if address.is_unspecified else address


def generate(host: str = "127.0.0.1") -> TlsMaterial:
    """A new CA and a serving certificate valid for loopback, `host` and the kubernetes names."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"lbctl-sandbox-ca@{int(now.timestamp())}")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    ips = {a for a in (_ip(t) for t in (*IP_ADDRESSES, host)) if a is not None}
    dns = list(DNS_NAMES)
    if _ip(host) is None and host and host not in dns:
        dns.append(host)
    san = x509.SubjectAlternativeName(
        [x509.DNSName(d) for d in dns] + [x509.IPAddress(a) for a in sorted(ips, key=str)])
    cert = (
        x509.CertificateBuilder().subject_name(_name("kube-apiserver")).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                     key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256()))
    return TlsMaterial(
        ca_cert.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()))


def server_context(material: TlsMaterial) -> ssl.SSLContext:
    """An SSL context serving `material` (TLS 1.2+, as kube-apiserver's default minimum)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="lbctl-tls-") as scratch:
        chain = Path(scratch) / "serving.pem"
        chain.touch(mode=0o600)
        chain.write_bytes(material.cert_pem + material.key_pem)
        context.load_cert_chain(chain)
    context.set_alpn_protocols(["http/1.1"])
    return context
