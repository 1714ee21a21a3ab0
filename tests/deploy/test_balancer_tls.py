"""TLS for the balancer daemons' API as the chart wires it (`balancer.tls`, on by default):
`--tls-cert`/`--tls-key` from a mounted kubernetes.io/tls Secret, HTTPS probes, the CA bundle
mounted into the controller and named as `caFile` in every `baremetal.balancers` entry, a render
that fails when an instance url's scheme disagrees with `balancer.tls.enabled`. The generated
certificate is read with `cryptography` (SANs: the instances' hosts, signed by the generated CA)
and used by Python's TLS stack (what the controller's urllib3 verifies with).

Then the path `helm template` cannot show: `helm install` and `helm upgrade` against the sandbox
API server, where the chart's `lookup` reads the cluster: the token, the heartbeat key, the CA
and the serving certificate are kept across upgrades; the certificate is issued again (by the
same CA) when the hosts change or it nears its end; a release without `heartbeat-key` gets one
and keeps its token.
"""

from __future__ import annotations

import base64
import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from lbctl.sandbox.app import Sandbox, SandboxOptions, SandboxThread
from tests.conftest import admin_call

from .conftest import CHART, NAMESPACE, RELEASE, Helm, Manifests, values_file

pytestmark = pytest.mark.integration

TOKEN_SECRET = f"{RELEASE}-balancer-token"
TLS_SECRET = f"{RELEASE}-balancer-tls"
CA_SECRET = f"{RELEASE}-balancer-ca"
TLS_DIR = "/var/run/lbctl/balancer-tls"
CA_DIR = "/var/run/lbctl/balancer-ca"
INSTANCES = [{"name": "lb-1", "url": "https://192.168.1.21:9450"},
             {"name": "lb-2", "url": "https://lb-2.example.net:9450"},
             {"name": "lb-3", "url": "https://[fd00:10::21]:9450"}]
DAY = 86400


def _values(tmp: Path, name: str, instances: list[dict[str, str]], **balancer: Any) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"balancer": {"instances": instances, **balancer}}))
    return path


@pytest.fixture(scope="module")
def rendered(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Manifests:
    values = _values(tmp_path_factory.mktemp("tls"), "instances", INSTANCES)
    return helm.template(values=[values_file("baremetal"), values])


def _pod(manifests: Manifests, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = manifests.one(kind)["spec"]["template"]["spec"]
    return found


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [i for i in items if i["name"] == name]
    assert len(found) == 1, name
    return found[0]


def _secrets(manifests: Manifests) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests.all("Secret")}


def _pem(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def _cert(secret: dict[str, Any], key: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_pem(secret, key))


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """(IP SANs, DNS SANs) of `cert`."""
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ({str(ip) for ip in names.get_values_for_type(x509.IPAddress)},
            set(names.get_values_for_type(x509.DNSName)))


def _balancers(manifests: Manifests) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = yaml.safe_load(manifests.config_text())["baremetal"][
        "balancers"]
    return found


def test_daemon_serves_https_with_the_mounted_certificate(rendered: Manifests) -> None:
    pod = _pod(rendered, "DaemonSet")
    (container,) = pod["containers"]
    args = container["args"]
    assert args[args.index("--tls-cert") + 1] == f"{TLS_DIR}/tls.crt"
    assert args[args.index("--tls-key") + 1] == f"{TLS_DIR}/tls.key"
    # a directory mount (never subPath): a renewed certificate reaches the daemon
    assert _named(container["volumeMounts"], "tls") == {"name": "tls", "mountPath": TLS_DIR,
                                                        "readOnly": True}
    assert _named(pod["volumes"], "tls") == {"name": "tls", "secret": {
        "secretName": TLS_SECRET, "defaultMode": 0o440,
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}}
    # the daemon answers nothing but HTTPS: the kubelet's probes too
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS", probe
        assert container[probe]["httpGet"]["port"] == "api", probe


def test_controller_verifies_the_daemons_with_the_mounted_ca(rendered: Manifests) -> None:
    pod = _pod(rendered, "Deployment")
    mount = _named(rendered.container()["volumeMounts"], "balancer-ca")
    assert mount == {"name": "balancer-ca", "mountPath": CA_DIR, "readOnly": True}
    assert _named(pod["volumes"], "balancer-ca") == {"name": "balancer-ca", "secret": {
        "secretName": TLS_SECRET, "defaultMode": 0o440,
        "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    balancers = _balancers(rendered)
    assert [b["url"] for b in balancers] == [i["url"] for i in INSTANCES]
    assert {b["caFile"] for b in balancers} == {f"{mount['mountPath']}/ca.crt"}
    # the CA's private key is in a Secret no pod mounts
    mounted = {v["secret"]["secretName"] for kind in ("Deployment", "DaemonSet")
               for v in _pod(rendered, kind)["volumes"] if "secret" in v}
    assert CA_SECRET not in mounted
    assert TLS_SECRET in mounted


def test_generated_certificate_names_the_instances_hosts(rendered: Manifests) -> None:
    secrets = _secrets(rendered)
    tls, ca_secret = secrets[TLS_SECRET], secrets[CA_SECRET]
    assert tls["type"] == "kubernetes.io/tls"
    assert set(tls["data"]) == {"tls.crt", "tls.key", "ca.crt"}  # as cert-manager writes it
    assert ca_secret["type"] == "Opaque"
    assert set(ca_secret["data"]) == {"ca.crt", "ca.key"}
    cert, ca = _cert(tls, "tls.crt"), _cert(tls, "ca.crt")
    assert _pem(tls, "ca.crt") == _pem(ca_secret, "ca.crt")
    # addresses as IP SANs, names as DNS SANs: every host of balancer.instances[].url
    assert _sans(cert) == ({"192.168.1.21", "fd00:10::21"}, {"lb-2.example.net"})
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    # each key belongs to its certificate
    key = serialization.load_pem_private_key(_pem(tls, "tls.key"), password=None)
    ca_key = serialization.load_pem_private_key(_pem(ca_secret, "ca.key"), password=None)
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    assert key.public_key().public_bytes(encoding, raw) == cert.public_key().public_bytes(
        encoding, raw)
    assert ca_key.public_key().public_bytes(encoding, raw) == ca.public_key().public_bytes(
        encoding, raw)
    # validityDays (825 by default); the CA lives ten times as long
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert abs(lifetime - datetime.timedelta(days=825)) < datetime.timedelta(days=1)
    ca_lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert abs(ca_lifetime - datetime.timedelta(days=8250)) < datetime.timedelta(days=1)
    # what an upgrade compares to decide whether to issue it again
    annotations = tls["metadata"]["annotations"]
    assert annotations["lbctl.io/hosts"] == "192.168.1.21,lb-2.example.net,fd00:10::21"
    assert abs(int(annotations["lbctl.io/not-after"])
               - cert.not_valid_after_utc.timestamp()) < DAY


def _serve_tls(cert: Path, key: Path) -> tuple[socket.socket, threading.Thread]:
    """One TLS handshake at a time on 127.0.0.1 with `cert`, until the socket closes."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError):
                    pass  # the client refused the certificate

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_generated_certificate_verifies_as_the_controller_connects(
        helm: Helm, tmp_path: Path) -> None:
    """The rendered tls.crt/tls.key served by Python's TLS stack, and verified with the
    rendered ca.crt and hostname checks on, as urllib3 does with caFile (strict X.509 too, as
    Python 3.13 defaults to): the address and the name in the urls pass, another name fails."""
    values = _values(tmp_path, "local", [{"name": "a", "url": "https://127.0.0.1:9450"},
                                         {"name": "b", "url": "https://localhost:9450"}])
    tls = _secrets(helm.template(values=[values_file("baremetal"), values]))[TLS_SECRET]
    for key in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / key).write_bytes(_pem(tls, key))
    listener, thread = _serve_tls(tmp_path / "tls.crt", tmp_path / "tls.key")
    port = listener.getsockname()[1]
    try:
        client = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        client.verify_flags |= ssl.VERIFY_X509_STRICT
        for name in ("127.0.0.1", "localhost"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    client.wrap_socket(raw, server_hostname=name) as conn:
                assert conn.recv(2) == b"ok", name
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            client.wrap_socket(raw, server_hostname="lb-9.example.net")
        # and a CA it was not signed by is refused
        other = _secrets(helm.template(values=[values_file("baremetal"), values]))[TLS_SECRET]
        (tmp_path / "other-ca.crt").write_bytes(_pem(other, "ca.crt"))
        stranger = ssl.create_default_context(cafile=str(tmp_path / "other-ca.crt"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            stranger.wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        listener.close()
        thread.join(timeout=10)


def test_validity_days_sets_the_certificate_lifetime(helm: Helm, tmp_path: Path) -> None:
    values = _values(tmp_path, "short", INSTANCES[:1], tls={"validityDays": 90})
    tls = _secrets(helm.template(values=[values_file("baremetal"), values]))[TLS_SECRET]
    cert = _cert(tls, "tls.crt")
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert abs(lifetime - datetime.timedelta(days=90)) < datetime.timedelta(days=1)


def test_tls_off_serves_plain_http(helm: Helm, tmp_path: Path) -> None:
    values = _values(tmp_path, "plain", [{"name": "lb-1", "url": "http://192.168.1.21:9450"}],
                     tls={"enabled": False})
    manifests = helm.template(values=[values_file("baremetal"), values])
    pod = _pod(manifests, "DaemonSet")
    (container,) = pod["containers"]
    assert "--tls-cert" not in container["args"] and "--tls-key" not in container["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert "scheme" not in container[probe]["httpGet"], probe
    assert all(v["name"] != "tls" for v in pod["volumes"])
    assert all(m["name"] != "tls" for m in container["volumeMounts"])
    assert all(v["name"] != "balancer-ca" for v in _pod(manifests, "Deployment")["volumes"])
    assert all(m["name"] != "balancer-ca" for m in manifests.container()["volumeMounts"])
    assert _balancers(manifests) == [{"name": "lb-1", "url": "http://192.168.1.21:9450",
                                      "tokenFile": "/var/run/lbctl/balancer-token/token"}]
    assert set(_secrets(manifests)) == {TOKEN_SECRET}


@pytest.mark.parametrize(("tls", "urls", "message"), [
    (True, ["https://10.0.0.1:9450", "http://10.0.0.2:9450"],
     'balancer.instances[1].url must be https:// with balancer.tls.enabled (the daemons serve '
     'HTTPS only), not "http://10.0.0.2:9450"'),
    (False, ["https://10.0.0.1:9450"],
     'balancer.instances[0].url must be http:// with balancer.tls.enabled false (the daemons '
     'serve plain HTTP), not "https://10.0.0.1:9450"'),
], ids=["http-with-tls", "https-without-tls"])
@pytest.mark.parametrize("existing_config_map", [False, True],
                         ids=["rendered-config", "existing-configmap"])
def test_url_scheme_must_agree_with_tls(helm: Helm, tmp_path: Path, tls: bool,
                                        urls: list[str], message: str,
                                        existing_config_map: bool) -> None:
    """Refused at render time, also when the chart does not render config.yaml (the check is
    the DaemonSet's, not only the ConfigMap's)."""
    values = _values(tmp_path, "bad", [{"name": f"lb-{i}", "url": url}
                                       for i, url in enumerate(urls)], tls={"enabled": tls})
    args = ["template", RELEASE, str(CHART), "-f", str(values_file("baremetal")),
            "-f", str(values)]
    if existing_config_map:
        args += ["--set", "existingConfigMap=mine"]
    done = helm.run(*args, check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_existing_tls_secret_is_mounted_instead(helm: Helm, tmp_path: Path) -> None:
    values = _values(tmp_path, "mine", INSTANCES, tls={"existingSecret": "balancer-cert"})
    manifests = helm.template(values=[values_file("baremetal"), values])
    assert set(_secrets(manifests)) == {TOKEN_SECRET}  # no CA, no certificate generated
    daemon = _pod(manifests, "DaemonSet")
    assert _named(daemon["volumes"], "tls")["secret"]["secretName"] == "balancer-cert"
    assert "--tls-cert" in daemon["containers"][0]["args"]
    controller = _pod(manifests, "Deployment")
    assert _named(controller["volumes"], "balancer-ca")["secret"] == {
        "secretName": "balancer-cert", "defaultMode": 0o440,
        "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert {b["caFile"] for b in _balancers(manifests)} == {f"{CA_DIR}/ca.crt"}


# --- install and upgrade: the chart's lookup against an API server --------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    """The sandbox API server (no workloads: helm only stores objects) and its kubeconfig."""
    tmp = tmp_path_factory.mktemp("helm-install")
    thread = SandboxThread(SandboxOptions(kubeconfig=tmp / "admin.kc", workloads=False,
                                          bookmark_interval=0.5))
    box = thread.start()
    try:
        yield box, tmp / "admin.kc"
    finally:
        thread.stop()


class Release:
    """`helm install`/`upgrade` of the chart into the sandbox, and the Secrets it holds."""

    def __init__(self, helm: Helm, box: Sandbox, kubeconfig: Path, tmp: Path) -> None:
        self.helm, self.box, self.kubeconfig, self.tmp = helm, box, kubeconfig, tmp

    def apply(self, verb: str, instances: list[dict[str, str]]) -> None:
        values = _values(self.tmp, f"{verb}-{len(instances)}", instances)
        # client-side apply: the sandbox has no server-side apply (helm 4's default)
        args = [verb, RELEASE, str(CHART), "--namespace", NAMESPACE, "--kubeconfig",
                str(self.kubeconfig), "--server-side=false", "-f",
                str(values_file("baremetal")), "-f", str(values)]
        if verb == "install":
            args.append("--create-namespace")
        self.helm.run(*args)

    def render(self, instances: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
        """`helm template --dry-run=server`: a render whose lookups read the cluster."""
        values = _values(self.tmp, "render", instances)
        out = self.helm.run("template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                            "--kubeconfig", str(self.kubeconfig), "--dry-run=server",
                            "-f", str(values_file("baremetal")), "-f", str(values)).stdout
        return _secrets(Manifests([d for d in yaml.safe_load_all(out) if d]))

    def path(self, name: str) -> str:
        return f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}"

    def secret(self, name: str) -> dict[str, Any]:
        code, found, _ = admin_call(self.box, "GET", self.path(name))
        assert code == 200, found
        doc: dict[str, Any] = found
        return doc

    def data(self) -> dict[str, dict[str, str]]:
        return {name: self.secret(name)["data"] for name in (TOKEN_SECRET, CA_SECRET,
                                                             TLS_SECRET)}

    def patch(self, name: str, body: dict[str, Any]) -> None:
        code, found, _ = admin_call(self.box, "PATCH", self.path(name), body,
                                    headers={"Content-Type": "application/merge-patch+json"})
        assert code == 200, found

    def delete(self, name: str) -> None:
        code, found, _ = admin_call(self.box, "DELETE", self.path(name))
        assert code == 200, found


def test_install_and_upgrades_keep_the_token_ca_and_certificate(
        helm: Helm, cluster: tuple[Sandbox, Path], tmp_path: Path) -> None:
    box, kubeconfig = cluster
    release = Release(helm, box, kubeconfig, tmp_path)
    one, two = INSTANCES[:1], INSTANCES[:2]
    release.apply("install", one)
    installed = release.data()
    assert set(installed[TOKEN_SECRET]) == {"token", "heartbeat-key"}
    assert _sans(_cert(release.secret(TLS_SECRET), "tls.crt")) == ({"192.168.1.21"}, set())

    # an upgrade with the same values changes nothing: lookup read every key back
    release.apply("upgrade", one)
    assert release.data() == installed
    # and a render against the cluster shows the stored Secrets (no diff for a GitOps tool
    # that renders with cluster access)
    assert {n: s["data"] for n, s in release.render(one).items()} == installed

    # a new instance: the same token and CA, a certificate issued again for both hosts
    release.apply("upgrade", two)
    grown = release.data()
    assert grown[TOKEN_SECRET] == installed[TOKEN_SECRET]
    assert grown[CA_SECRET] == installed[CA_SECRET]
    assert grown[TLS_SECRET]["tls.crt"] != installed[TLS_SECRET]["tls.crt"]
    tls = release.secret(TLS_SECRET)
    cert = _cert(tls, "tls.crt")
    assert _sans(cert) == ({"192.168.1.21"}, {"lb-2.example.net"})
    cert.verify_directly_issued_by(_cert(release.secret(CA_SECRET), "ca.crt"))
    assert tls["metadata"]["annotations"]["lbctl.io/hosts"] == "192.168.1.21,lb-2.example.net"

    # a certificate in its last 30 days is issued again on the next upgrade
    soon = int(time.time()) + 10 * DAY
    release.patch(TLS_SECRET, {"metadata": {"annotations": {"lbctl.io/not-after": str(soon)}}})
    release.apply("upgrade", two)
    renewed = release.secret(TLS_SECRET)
    assert renewed["data"]["tls.crt"] != grown[TLS_SECRET]["tls.crt"]
    assert int(renewed["metadata"]["annotations"]["lbctl.io/not-after"]) > soon + 700 * DAY
    assert renewed["data"]["ca.crt"] == installed[CA_SECRET]["ca.crt"]

    # a release from before heartbeat-key: the upgrade keeps the token and adds the key
    release.patch(TOKEN_SECRET, {"data": {"heartbeat-key": None}})
    assert set(release.secret(TOKEN_SECRET)["data"]) == {"token"}
    release.apply("upgrade", two)
    token = release.secret(TOKEN_SECRET)["data"]
    assert token["token"] == installed[TOKEN_SECRET]["token"]
    assert set(token) == {"token", "heartbeat-key"}
    assert len(base64.b64decode(token["heartbeat-key"])) == 48

    # the documented CA rotation: delete the CA's Secret, upgrade: a new CA, a certificate
    # signed by it, the new CA in the bundle the controller mounts; the token stays
    release.delete(CA_SECRET)
    release.apply("upgrade", two)
    rotated = release.data()
    assert rotated[CA_SECRET]["ca.crt"] != installed[CA_SECRET]["ca.crt"]
    assert rotated[TLS_SECRET]["ca.crt"] == rotated[CA_SECRET]["ca.crt"]
    _cert(release.secret(TLS_SECRET), "tls.crt").verify_directly_issued_by(
        _cert(release.secret(CA_SECRET), "ca.crt"))
    assert rotated[TOKEN_SECRET] == token

