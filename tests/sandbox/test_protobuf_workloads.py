"""Decoding workload bodies sent as kube protobuf (kubectl >= 1.32's typed creates).

Two kinds of evidence: bodies captured from kubectl 1.35 (`create deployment`, `create pdb`)
against the sandbox, which pin the field numbers to what real clients send, and bodies encoded
here by hand for the fields a typical manifest carries that kubectl's generators never set
(resources, env sources, probes, volumes, security contexts, strategies, selectors with
expressions), which pin the decoder's rules: embedded messages join their parent, Quantity and
IntOrString become scalars, pointer fields keep zero and `{}`, packed integers are read.
"""

from __future__ import annotations

from typing import Any

import pytest

from lbctl.sandbox.encoding import protobuf

pytestmark = pytest.mark.unit

# kubectl 1.35.2: create deployment k8s-demo --image=nginx --replicas=3 --port=8080
CAPTURED_DEPLOYMENT = (
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412cd010a290a086b38732d64656d6f1200"
    "1a0022002a003200380042005a0f0a0361707012086b38732d64656d6f129101080312110a0f0a0361707012"
    "086b38732d64656d6f1a720a210a0012001a0022002a003200380042005a0f0a0361707012086b38732d6465"
    "6d6f124d122f0a056e67696e7812056e67696e782a00320b0a00100018903f22002a0042006a007200800100"
    "880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038"
    "001a0c0800100018002000280038001a002200")
# kubectl 1.35.2: create deployment sleeper --image=busybox -- sleep 3600
CAPTURED_COMMAND = (
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412cd010a270a07736c6565706572120"
    "01a0022002a003200380042005a0e0a036170701207736c6565706572129301080112100a0e0a0361707012"
    "07736c65657065721a750a200a0012001a0022002a003200380042005a0e0a036170701207736c656570657"
    "2125112330a0762757379626f78120762757379626f781a05736c6565701a04333630302a0042006a007200"
    "800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a0"
    "0280038001a0c0800100018002000280038001a002200")
# kubectl 1.35.2: create pdb min --selector=app=web --min-available=1
CAPTURED_PDB_MIN = (
    "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e42756467657412390a130a03"
    "6d696e12001a0022002a0032003800420012160a06080010011a00120c0a0a0a0361707012037765621a0a08"
    "0018002000280030001a002200")
# kubectl 1.35.2: create pdb max --selector=app=web --max-unavailable=50%
CAPTURED_PDB_MAX = (
    "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574123c0a130a03"
    "6d617812001a0022002a003200380042001219120c0a0a0a0361707012037765621a09080110001a03353025"
    "1a0a080018002000280030001a002200")


# -- a hand encoder: every field written, as Go's generated marshallers do -----------------
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def i(number: int, value: int) -> bytes:
    """A varint field, zero included (a pointer set to 0 is on the wire)."""
    return _varint(number << 3) + _varint(value)


def m(number: int, *parts: bytes | str) -> bytes:
    """A length-delimited field: a string, or a message made of `parts`."""
    data = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def entry(number: int, key: str, value: bytes | str) -> bytes:
    """One map entry (key 1, value 2)."""
    return m(number, m(1, key), m(2, value))


def quantity(text: str) -> bytes:
    return m(1, text)


def int_or_string(value: int | str) -> bytes:
    return i(1, 1) + i(2, 0) + m(3, value) if isinstance(value, str) else (
        i(1, 0) + i(2, value) + m(3, ""))


def envelope(api_version: str, kind: str, body: bytes) -> bytes:
    return protobuf.MAGIC + m(1, m(1, api_version), m(2, kind)) + m(2, body)


def decode(hex_body: str) -> dict[str, Any]:
    return protobuf.decode(bytes.fromhex(hex_body))


# -- captured from kubectl -------------------------------------------------------------------
def test_kubectl_create_deployment_decodes_like_its_json() -> None:
    assert decode(CAPTURED_DEPLOYMENT) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "k8s-demo", "labels": {"app": "k8s-demo"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "k8s-demo"}},
            "template": {
                "metadata": {"labels": {"app": "k8s-demo"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                         "ports": [{"containerPort": 8080}]}]}},
        }}


def test_kubectl_create_deployment_with_a_command() -> None:
    spec = decode(CAPTURED_COMMAND)["spec"]
    assert spec["replicas"] == 1  # a pointer: kubectl sets it
    assert spec["template"]["spec"]["containers"] == [
        {"name": "busybox", "image": "busybox", "command": ["sleep", "3600"]}]


@pytest.mark.parametrize(("body", "budget"), [
    (CAPTURED_PDB_MIN, {"minAvailable": 1}),
    (CAPTURED_PDB_MAX, {"maxUnavailable": "50%"}),
])
def test_kubectl_create_pdb(body: str, budget: dict[str, Any]) -> None:
    pdb = decode(body)
    assert (pdb["apiVersion"], pdb["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert pdb["spec"] == {**budget, "selector": {"matchLabels": {"app": "web"}}}


# -- encoded by hand -------------------------------------------------------------------------
def _container() -> bytes:
    resources = m(8, entry(1, "cpu", quantity("500m")), entry(1, "memory", quantity("128Mi")),
                  entry(2, "cpu", quantity("250m")))
    env = (m(7, m(1, "MODE"), m(2, "prod"))
           + m(7, m(1, "TOKEN"), m(2, ""),
               m(3, m(4, m(1, m(1, "creds")), m(2, "token"), i(3, 0)))))
    env_from = m(19, m(1, "CFG_"), m(2, m(1, m(1, "settings"))))
    probe = m(11, m(1, m(2, m(1, "/healthz"), m(2, int_or_string("http")), m(3, ""), m(4, ""))),
              i(2, 0), i(3, 1), i(4, 10), i(5, 1), i(6, 3))
    mount = m(9, m(1, "cache"), i(2, 0), m(3, "/cache"), m(4, ""), m(6, ""))
    return m(2, m(1, "web"), m(2, "registry.example/web:1.2"), m(3, "/bin/web"),
             m(4, "--port=8080"), m(4, "--verbose"), m(5, ""),
             m(6, m(1, "http"), i(2, 0), i(3, 8080), m(4, "TCP"), m(5, "")),
             env, resources, mount, probe, m(13, "/dev/termination-log"),
             m(14, "IfNotPresent"), m(15), i(16, 0), i(17, 0), i(18, 0), m(20, "File"),
             env_from)


def _pod_spec() -> bytes:
    # runAsUser, then supplementalGroups once unpacked and twice packed: parsers take both
    pod_security = m(14, i(2, 1000), i(4, 1000), m(4, _varint(2000) + _varint(3000)))
    volumes = (m(1, m(1, "cache"), m(2, m(2, m(1, ""))))
               + m(1, m(1, "config"), m(2, m(19, m(1, m(1, "settings")),
                                             m(2, m(1, "a.yaml"), m(2, "a.yaml")),
                                             i(3, 0o644)))))
    return (volumes + _container() + m(3, "Always") + i(4, 0) + m(6, "ClusterFirst")
            + entry(7, "disktype", "ssd") + m(8, "web") + m(9, "") + m(10, "") + i(11, 0)
            + pod_security + m(16, "") + m(17, "") + m(19, "default-scheduler"))


def test_a_typical_deployment_manifest_decodes_like_its_json() -> None:
    selector = m(2, entry(1, "app", "web"),
                 m(2, m(1, "tier"), m(2, "In"), m(3, "front"), m(3, "edge")))
    strategy = m(4, m(1, "RollingUpdate"), m(2, m(1, int_or_string(0)),
                                            m(2, int_or_string("25%"))))
    template = m(3, m(1, m(1, ""), entry(11, "app", "web"), m(8, i(1, 0), i(2, 0))),
                 m(2, _pod_spec()))
    spec = i(1, 2) + selector + template + strategy + i(5, 0) + i(6, 0) + i(7, 0) + i(9, 600)
    body = envelope("apps/v1", "Deployment", m(1, m(1, "web")) + m(2, spec) + m(3, i(2, 5)))
    assert protobuf.decode(body) == {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]}]},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "volumes": [{"name": "cache", "emptyDir": {}},
                            {"name": "config", "configMap": {
                                "name": "settings", "defaultMode": 0o644,
                                "items": [{"key": "a.yaml", "path": "a.yaml"}]}}],
                "containers": [{
                    "name": "web", "image": "registry.example/web:1.2",
                    "command": ["/bin/web"], "args": ["--port=8080", "--verbose"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "MODE", "value": "prod"},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {
                                "name": "creds", "key": "token", "optional": False}}}],
                    "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "settings"}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                                  "requests": {"cpu": "250m"}},
                    "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                       "timeoutSeconds": 1, "periodSeconds": 10,
                                       "successThreshold": 1, "failureThreshold": 3},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent", "securityContext": {}}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 0,
                "dnsPolicy": "ClusterFirst", "nodeSelector": {"disktype": "ssd"},
                "serviceAccountName": "web", "schedulerName": "default-scheduler",
                "securityContext": {"runAsUser": 1000,
                                    "supplementalGroups": [1000, 2000, 3000]}}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "revisionHistoryLimit": 0, "progressDeadlineSeconds": 600,
        }}


def test_replica_sets_and_daemon_sets_share_the_pod_template() -> None:
    template = m(3, m(1, entry(11, "app", "x")), m(2, m(2, m(1, "c"), m(2, "img"))))
    rs = protobuf.decode(envelope("apps/v1", "ReplicaSet", m(1, m(1, "rs"))
                                  + m(2, i(1, 0), m(2, entry(1, "app", "x")), template)))
    assert rs["spec"] == {"replicas": 0, "selector": {"matchLabels": {"app": "x"}},
                          "template": {"metadata": {"labels": {"app": "x"}},
                                       "spec": {"containers": [{"name": "c", "image": "img"}]}}}
    ds_template = m(2, m(1, entry(11, "app", "x")), m(2, m(2, m(1, "c"), m(2, "img"))))
    update = m(3, m(1, "RollingUpdate"), m(2, m(1, int_or_string(1))))
    ds_spec = m(2, m(1, entry(1, "app", "x")), ds_template, update)
    ds = protobuf.decode(envelope("apps/v1", "DaemonSet", m(1, m(1, "ds")) + ds_spec))
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1}}
    assert ds["spec"]["template"]["spec"]["containers"] == [{"name": "c", "image": "img"}]


def test_pdb_keeps_an_explicit_zero_and_an_empty_selector() -> None:
    spec = m(2) + m(3, int_or_string(0)) + m(4, "AlwaysAllow")
    pdb = protobuf.decode(envelope("policy/v1", "PodDisruptionBudget",
                                   m(1, m(1, "none")) + m(2, spec)))
    # maxUnavailable 0 forbids every eviction; an empty selector selects every pod
    assert pdb["spec"] == {"selector": {}, "maxUnavailable": 0,
                           "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def test_fields_newer_than_the_tables_are_skipped() -> None:
    container = m(2, m(1, "c"), m(2, "img"), m(99, "from a future release"), i(98, 7))
    body = envelope("apps/v1", "Deployment", m(1, m(1, "d")) + m(2, m(3, m(2, container))))
    assert protobuf.decode(body)["spec"] == {
        "template": {"spec": {"containers": [{"name": "c", "image": "img"}]}}}
