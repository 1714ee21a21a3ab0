"""The Helm chart, the Dockerfile and the config schema as files: `helm lint` and `helm template`
for every provider's values, what the rendered objects promise (replicas, leader election,
probes, security, config mount, least-privilege RBAC), hadolint, and a schema that never drifts
from the config model."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # via kubernetes-validate
import pytest
import yaml

from lbctl.controller.config import ConfigError, parse_config
from lbctl.controller.planning import validate_config
from providers.azure import iam as azure_iam
from providers.azure.settings import KEYS as AZURE_KEYS
from providers.gcp.settings import KEYS as GCP_KEYS
from tests.conftest import unavailable

from .conftest import CHART, DEPLOY, KUBECTL, NAMESPACE, PROVIDERS, Helm, Manifests, values_file

pytestmark = pytest.mark.integration

SCHEMA = DEPLOY / "config.schema.json"
GEN_SCHEMA = DEPLOY / "gen_schema.py"
GEN_KUSTOMIZE = DEPLOY / "gen_kustomize.py"
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
EXPECTED_KINDS = sorted(["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment",
                         "PodDisruptionBudget", "Role", "RoleBinding", "Service",
                         "ServiceAccount"])
# values-baremetal.yaml also enables the balancer DaemonSet (test_balancer_manifests.py): its
# token Secret, its TLS CA and serving certificate (test_balancer_tls.py), no RBAC
BALANCER_KINDS = sorted(["DaemonSet", "Secret", "Secret", "Secret", "Service",
                         "ServiceAccount"])


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, Manifests]:
    return {p: helm.template(values=[values_file(p)]) for p in PROVIDERS}


def _rules(role: dict[str, Any]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {(group, resource, verb, tuple(rule.get("resourceNames") or ()))
            for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


@pytest.mark.parametrize("provider", [None, *PROVIDERS])
def test_helm_lint_strict(helm: Helm, provider: str | None) -> None:
    args = ["lint", "--strict", str(CHART)]
    if provider:
        args += ["-f", str(values_file(provider))]
    done = helm.run(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert "[ERROR]" not in done.stdout and "[WARNING]" not in done.stdout, done.stdout


@pytest.mark.parametrize("provider", PROVIDERS)
def test_template_renders_every_object(rendered: dict[str, Manifests], provider: str) -> None:
    manifests = rendered[provider]
    balancer = BALANCER_KINDS if provider == "baremetal" else []
    assert manifests.kinds() == sorted(EXPECTED_KINDS + balancer)
    assert manifests.component("controller").kinds() == EXPECTED_KINDS
    assert manifests.component("balancer").kinds() == balancer
    for doc in manifests.docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == {
            "controller": "lbctl", "balancer": "lbctl-balancer"}[
            labels["app.kubernetes.io/component"]]
        assert labels["app.kubernetes.io/instance"] == "lbctl"
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_config_of_every_example_is_valid(rendered: dict[str, Manifests], provider: str,
                                          tmp_path: Path) -> None:
    text = rendered[provider].config_text()
    config = parse_config(text)
    assert config.provider == provider
    jsonschema.validate(yaml.safe_load(text), json.loads(SCHEMA.read_text()))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    if importlib.util.find_spec(f"providers.{provider}") is None:
        # the provider is not in the tree yet: its section is checked once it lands
        return
    _, problems = validate_config(path)
    assert problems == []


def test_deployment_runs_two_elected_replicas_hardened(rendered: dict[str, Manifests]) -> None:
    manifests = rendered["baremetal"].component("controller")
    deployment = manifests.one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = manifests.container()
    assert deployment["spec"]["replicas"] == 2
    assert container["command"] == ["lbctl"]
    assert container["args"] == ["run", "--config", "/etc/lbctl/config.yaml",
                                 "--metrics-bind", "0.0.0.0:8080", "--leader-elect=true",
                                 "--log-format=json"]
    assert {"name": "POD_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in container["env"]
    # the ConfigMap as a directory (never subPath, so updates reach the running controller)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert mount == {"name": "config", "mountPath": "/etc/lbctl", "readOnly": True}
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert volume["configMap"] == {"name": manifests.one("ConfigMap")["metadata"]["name"],
                                   "items": [{"key": "config.yaml", "path": "config.yaml"}]}
    assert container["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert pod["serviceAccountName"] == manifests.one("ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    # the one writable place on a read-only root
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["terminationGracePeriodSeconds"] >= 30  # finish in-flight syncs, release Lease


def test_pdb_and_metrics_service_select_the_controller_pods(
        rendered: dict[str, Manifests]) -> None:
    manifests = rendered["baremetal"].component("controller")
    pod_labels = manifests.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = manifests.one("Deployment")["spec"]["selector"]["matchLabels"]
    pdb = manifests.one("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    service = manifests.one("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080,
                                         "targetPort": "metrics", "protocol": "TCP"}]


def test_rbac_is_exactly_what_the_controller_calls(rendered: dict[str, Manifests]) -> None:
    manifests = rendered["baremetal"].component("controller")
    sa = manifests.one("ServiceAccount")["metadata"]
    cluster_role = manifests.one("ClusterRole")
    assert _rules(cluster_role) == {
        ("", "services", "list", ()), ("", "services", "watch", ()),
        ("", "services", "patch", ()), ("", "services/status", "patch", ()),
        ("", "nodes", "list", ()), ("", "nodes", "watch", ()),
        ("", "events", "create", ()), ("", "events", "patch", ()), ("", "events", "get", ()),
        ("discovery.k8s.io", "endpointslices", "list", ()),
        ("discovery.k8s.io", "endpointslices", "watch", ()),
        ("", "namespaces", "list", ()), ("", "namespaces", "watch", ())}
    role = manifests.one("Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert _rules(role) == {
        ("coordination.k8s.io", "leases", "create", ()),
        ("coordination.k8s.io", "leases", "get", ("lbctl-controller",)),
        ("coordination.k8s.io", "leases", "update", ("lbctl-controller",))}
    subject = [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}]
    binding = manifests.one("ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole",
                                  "name": cluster_role["metadata"]["name"]}
    assert binding["subjects"] == subject
    role_binding = manifests.one("RoleBinding")
    assert role_binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                       "name": role["metadata"]["name"]}
    assert role_binding["subjects"] == subject
    assert role_binding["metadata"]["namespace"] == NAMESPACE


def test_provider_examples_carry_workload_identity(rendered: dict[str, Manifests]) -> None:
    def sa_annotations(provider: str) -> dict[str, str]:
        found: dict[str, str] = rendered[provider].component("controller").one(
            "ServiceAccount")["metadata"].get("annotations") or {}
        return found

    assert "eks.amazonaws.com/role-arn" in sa_annotations("aws")
    assert "iam.gke.io/gcp-service-account" in sa_annotations("gcp")
    assert "azure.workload.identity/client-id" in sa_annotations("azure")
    pod = rendered["azure"].one("Deployment")["spec"]["template"]["metadata"]
    assert pod["labels"]["azure.workload.identity/use"] == "true"
    assert sa_annotations("baremetal") == {}
    # credentials never in config: no key anywhere in the examples looks like a secret
    for provider in PROVIDERS:
        text = rendered[provider].config_text().lower()
        assert not re.search(r"secret|password|accesskey|token:", text), provider


def test_gcp_example_shows_every_key_and_the_permissions(
        rendered: dict[str, Manifests]) -> None:
    """values-gcp.yaml is the gcp section's reference: every key the provider reads, and the
    way to the permissions its Google service account needs."""
    config = yaml.safe_load(rendered["gcp"].config_text())
    assert sorted(config["gcp"]) == sorted(GCP_KEYS)
    assert "python -m providers.gcp.iam" in values_file("gcp").read_text()


def test_azure_example_shows_every_key_and_the_permissions(
        rendered: dict[str, Manifests], capsys: pytest.CaptureFixture[str]) -> None:
    """values-azure.yaml is the azure section's reference: every key the provider reads, the
    federated subject that is the chart's own ServiceAccount, and a role command that
    `providers.azure.iam` accepts as written."""
    config = yaml.safe_load(rendered["azure"].config_text())
    assert sorted(config["azure"]) == sorted(AZURE_KEYS)
    text = values_file("azure").read_text()
    sa = rendered["azure"].component("controller").one("ServiceAccount")["metadata"]
    assert f"--subject system:serviceaccount:{sa['namespace']}:{sa['name']}" in text
    command = re.search(r"python -m providers\.azure\.iam (--role-json.*?)\n#\s+> ", text,
                        re.S)
    assert command, text
    args = [word for word in command.group(1).split() if word not in ("\\", "#")]
    assert azure_iam.main(["iam", *args]) == 0
    role = json.loads(capsys.readouterr().out)
    assert role["AssignableScopes"] == [f"/subscriptions/{config['azure']['subscriptionId']}/"
                                        f"resourceGroups/{config['azure']['resourceGroup']}"]


def test_single_replica_without_leader_election(helm: Helm) -> None:
    manifests = helm.template(sets=["replicaCount=1", "leaderElection.enabled=false"])
    assert manifests.one("Deployment")["spec"]["replicas"] == 1
    assert "--leader-elect=false" in manifests.container()["args"]
    # no Lease, so no Role for it; one replica cannot satisfy minAvailable 1 during drains
    assert "Role" not in manifests.kinds() and "RoleBinding" not in manifests.kinds()
    assert "PodDisruptionBudget" not in manifests.kinds()


def test_refuses_unelected_replicas_and_old_clusters(helm: Helm) -> None:
    done = helm.run("template", "x", str(CHART), "--kube-version", "1.33.0",
                    "--set", "leaderElection.enabled=false", check=False)
    assert done.returncode != 0
    assert "leaderElection.enabled=false needs replicaCount: 1" in done.stderr
    done = helm.run("template", "x", str(CHART), "--kube-version", "1.26.0", check=False)
    assert done.returncode != 0
    assert "chart requires kubeVersion: >=1.27.0-0" in done.stderr


def test_existing_configmap_is_mounted_instead(helm: Helm) -> None:
    manifests = helm.template(sets=["existingConfigMap=my-lbctl-config"])
    assert "ConfigMap" not in manifests.kinds()
    volumes = manifests.one("Deployment")["spec"]["template"]["spec"]["volumes"]
    assert next(v for v in volumes if v["name"] == "config")["configMap"]["name"] == (
        "my-lbctl-config")


def test_hadolint_finds_nothing(hadolint: Path) -> None:
    done = subprocess.run([str(hadolint), "--no-color", str(DEPLOY / "Dockerfile")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_dockerfile_runs_lbctl_as_non_root_from_python_311_slim() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert froms and all(image == "python:3.11-slim" for image in froms)
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")):]
    user = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user == ["65532:65532"]  # numeric, so runAsNonRoot can verify it
    assert 'ENTRYPOINT ["lbctl"]' in final
    assert any("PYTHONDONTWRITEBYTECODE=1" in line for line in final)
    # the build installs exactly the locked, hashed dependencies
    text = (DEPLOY / "Dockerfile").read_text()
    assert "--frozen" in text and "--require-hashes" in text
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1:][:5] == ["!pyproject.toml", "!uv.lock", "!README.md",
                                                 "!lbctl/", "!providers/"]


def test_config_schema_is_generated_from_the_model(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(GEN_SCHEMA), "--check"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    stale = tmp_path / "schema.json"
    stale.write_text(SCHEMA.read_text().replace('"maximum": 64', '"maximum": 65'))
    done = subprocess.run([sys.executable, str(GEN_SCHEMA), "--check", "--output", str(stale)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "is stale" in done.stderr


def test_config_schema_agrees_with_the_parser() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = {"clusterName": "prod", "provider": "baremetal",
            "controller": {"workers": 4, "qps": 50}, "meltdown": {"maxRemovedFraction": 1},
            "baremetal": {"pools": []}}
    assert list(validator.iter_errors(good)) == []
    parse_config(yaml.safe_dump(good))
    for bad, key in [({"clusterNmae": "x"}, "clusterNmae"),
                     ({"controller": {"workers": 0}}, "controller.workers"),
                     ({"meltdown": {"maxRemovedFraction": 0}}, "meltdown.maxRemovedFraction"),
                     ({"handleClasslessServices": "maybe"}, "handleClasslessServices")]:
        assert list(validator.iter_errors(bad)), bad
        with pytest.raises(ConfigError) as info:
            parse_config(yaml.safe_dump(bad))
        assert key in str(info.value)


def _without_helm_labels(doc: dict[str, Any]) -> dict[str, Any]:
    for meta in (doc["metadata"], doc.get("spec", {}).get("template", {}).get("metadata")):
        for label in HELM_LABELS:
            (meta or {}).get("labels", {}).pop(label, None)
    return doc


def test_kustomize_tree_is_generated_from_the_chart(helm: Helm) -> None:
    done = subprocess.run([sys.executable, str(GEN_KUSTOMIZE), "--check", "--helm",
                           str(helm.binary)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("provider", PROVIDERS)
def test_kustomize_overlay_builds_what_helm_renders(helm: Helm, provider: str,
                                                    tmp_path: Path) -> None:
    if not KUBECTL.exists():
        unavailable(f"{KUBECTL} is missing (the machine image's kubectl 1.33)")
    done = subprocess.run([str(KUBECTL), "kustomize",
                           str(DEPLOY / "kustomize" / "overlays" / provider)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    built = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(done.stdout)}
    # a Secret the chart generates holds random data: the overlay leaves it to the user
    # (tests/deploy/test_balancer_manifests.py checks what the kustomization says)
    want = {(d["kind"], d["metadata"]["name"]): _without_helm_labels(d)
            for d in helm.template(values=[values_file(provider)]).docs if d["kind"] != "Secret"}
    assert sorted(built) == sorted(want)
    for key, doc in want.items():
        assert built[key] == doc, key
