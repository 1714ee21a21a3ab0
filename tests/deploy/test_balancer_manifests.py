"""The chart's balancer DaemonSet (`balancer.enabled`, on in values-baremetal.yaml): the
`lbctl balancer serve` daemon on host networking, hardened, with its state on the node, the API's
bearer token (and the heartbeat key) in a Secret mounted into both the daemons and the
controller, no Kubernetes API access at all (no token mounted, nothing bound), and the listed
instances in the controller's `baremetal.balancers`. The rendered objects pass the checks the
other deploy tests apply (helm lint --strict, labels and namespace, config parser, schema and
provider validation, the 1.33 API schema, a strict apply to the sandbox), and none of it renders
with another provider's values. TLS for the API: test_balancer_tls.py."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # via kubernetes-validate
import pytest
import yaml

from lbctl.controller.config import parse_config
from lbctl.controller.planning import validate_config
from lbctl.sandbox.app import Sandbox
from lbctl.sandbox.openapi.schema import validate_full

from .conftest import (
    CHART,
    DEPLOY,
    NAMESPACE,
    PROVIDERS,
    RELEASE,
    Helm,
    Manifests,
    values_file,
)
from .kubectl_sandbox import kubectl, tls_sandbox

pytestmark = pytest.mark.integration

SCHEMA = DEPLOY / "config.schema.json"
BALANCER = f"{RELEASE}-balancer"
TOKEN_SECRET = f"{RELEASE}-balancer-token"
TLS_SECRET = f"{RELEASE}-balancer-tls"
CA_SECRET = f"{RELEASE}-balancer-ca"
TLS_DIR = "/var/run/lbctl/balancer-tls"
SERVE = ["balancer", "serve", "--api-listen", "0.0.0.0:9450",
         "--token-file", "/var/run/lbctl/token/token",
         "--tls-cert", f"{TLS_DIR}/tls.crt", "--tls-key", f"{TLS_DIR}/tls.key",
         "--state-file", "/var/lib/lbctl/balancer-state.json"]
CONTROLLER_TOKEN_DIR = "/var/run/lbctl/balancer-token"
CONTROLLER_CA_FILE = "/var/run/lbctl/balancer-ca/ca.crt"
DAEMON_TOKEN_DIR = "/var/run/lbctl/token"
INSTANCES = [{"name": "lb-1", "url": "https://192.168.1.21:9450"},
             {"name": "lb-2", "url": "https://lb-2.example.net:9450"},
             {"name": "lb-3", "url": "https://[fd00:10::21]:9450"}]


@pytest.fixture(scope="module")
def instances_values(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """values-baremetal.yaml's companion: two instances and daemon options passed through."""
    path = tmp_path_factory.mktemp("values") / "instances.yaml"
    path.write_text(yaml.safe_dump({
        "balancer": {"instances": INSTANCES},
        "config": {"baremetal": {"healthCheck": {"intervalSeconds": 5, "timeoutSeconds": 2,
                                                 "healthyThreshold": 2,
                                                 "unhealthyThreshold": 3},
                                 "dataplane": "userspace", "statusPollSeconds": 15,
                                 "drainSeconds": 10}}}))
    return path


@pytest.fixture(scope="module")
def baremetal(helm: Helm) -> Manifests:
    return helm.template(values=[values_file("baremetal")])


@pytest.fixture(scope="module")
def with_instances(helm: Helm, instances_values: Path) -> Manifests:
    return helm.template(values=[values_file("baremetal"), instances_values])


def _daemonset(manifests: Manifests) -> dict[str, Any]:
    return manifests.component("balancer").one("DaemonSet")


def _pod(manifests: Manifests) -> dict[str, Any]:
    found: dict[str, Any] = _daemonset(manifests)["spec"]["template"]["spec"]
    return found


def _container(manifests: Manifests) -> dict[str, Any]:
    containers = _pod(manifests)["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def _volume(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found = [v for v in pod["volumes"] if v["name"] == name]
    assert len(found) == 1, name
    volume: dict[str, Any] = found[0]
    return volume


def _mount(container: dict[str, Any], name: str) -> dict[str, Any]:
    found = [m for m in container["volumeMounts"] if m["name"] == name]
    assert len(found) == 1, name
    mount: dict[str, Any] = found[0]
    return mount


def _balancers(manifests: Manifests) -> list[dict[str, Any]]:
    config = yaml.safe_load(manifests.config_text())
    found: list[dict[str, Any]] = (config.get("baremetal") or {}).get("balancers") or []
    return found


def test_daemonset_serves_on_the_lb_nodes_host_network(baremetal: Manifests) -> None:
    ds = _daemonset(baremetal)
    assert ds["apiVersion"] == "apps/v1"
    assert ds["metadata"]["name"] == BALANCER
    assert ds["metadata"]["namespace"] == NAMESPACE
    pod = _pod(baremetal)
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    # one per node, on the labelled LB nodes only
    assert pod["nodeSelector"] == {"lbctl.io/balancer": "true"}
    selector = ds["spec"]["selector"]["matchLabels"]
    assert selector.items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    # never the controller's pods: its Deployment, PDB and Service select name + instance
    controller = baremetal.component("controller").one("Deployment")["spec"]["selector"]
    assert not controller["matchLabels"].items() <= (
        ds["spec"]["template"]["metadata"]["labels"].items())
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1}}
    container = _container(baremetal)
    assert container["command"] == ["lbctl"]
    assert container["args"] == [*SERVE, "--workers=1", "--log-format=json"]
    assert container["ports"] == [{"name": "api", "containerPort": 9450, "protocol": "TCP"}]
    # balancer.tls is on by default: the probes speak HTTPS (test_balancer_tls.py)
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "api",
                                                      "scheme": "HTTPS"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "api",
                                                     "scheme": "HTTPS"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert "memory" in container["resources"]["limits"]


def test_static_balancers_file_is_mounted_and_passed_when_given(helm: Helm) -> None:
    manifests = helm.template(values=[values_file("baremetal")],
                              sets=["balancer.existingConfigMap=static-balancers"])
    container = _container(manifests)
    assert container["args"] == [*SERVE, "--config", "/etc/lbctl/balancers.yaml",
                                 "--workers=1", "--log-format=json"]
    assert _mount(container, "config") == {"name": "config", "mountPath": "/etc/lbctl",
                                           "readOnly": True}
    assert _volume(_pod(manifests), "config")["configMap"] == {
        "name": "static-balancers", "items": [{"key": "balancers.yaml",
                                               "path": "balancers.yaml"}]}
    assert "--config" not in _container(helm.template(values=[values_file("baremetal")]))["args"]


def test_daemonset_is_hardened(baremetal: Manifests) -> None:
    pod = _pod(baremetal)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = _container(baremetal)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    # the userspace data plane binds VIPs with IP_FREEBIND: nothing beyond low ports
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    # the writable places on a read-only root: /tmp and the state directory
    assert _mount(_container(baremetal), "tmp") == {"name": "tmp", "mountPath": "/tmp"}


def test_net_admin_capabilities_are_an_option(helm: Helm) -> None:
    manifests = helm.template(values=[values_file("baremetal")],
                              sets=["balancer.netAdminCapabilities=true"])
    security = _container(manifests)["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert sorted(security["capabilities"]["add"]) == ["NET_ADMIN", "NET_BIND_SERVICE",
                                                       "NET_RAW"]
    # and nothing else loosens with it
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert _pod(manifests)["securityContext"]["runAsNonRoot"] is True


def test_state_survives_on_the_node_by_default(baremetal: Manifests, helm: Helm) -> None:
    mount = _mount(_container(baremetal), "state")
    assert mount == {"name": "state", "mountPath": "/var/lib/lbctl"}  # writable
    assert _volume(_pod(baremetal), "state") == {
        "name": "state", "hostPath": {"path": "/var/lib/lbctl-balancer",
                                      "type": "DirectoryOrCreate"}}
    emptied = helm.template(values=[values_file("baremetal")],
                            sets=["balancer.state.type=emptyDir"])
    state = _volume(_pod(emptied), "state")
    assert set(state) == {"name", "emptyDir"}
    assert _mount(_container(emptied), "state") == mount
    elsewhere = helm.template(values=[values_file("baremetal")],
                              sets=["balancer.state.hostPath=/srv/lbctl"])
    assert _volume(_pod(elsewhere), "state")["hostPath"]["path"] == "/srv/lbctl"
    done = helm.run("template", RELEASE, str(CHART), "-f", str(values_file("baremetal")),
                    "--set", "balancer.state.type=tmpfs", check=False)
    assert done.returncode != 0
    assert "at '/balancer/state/type'" in done.stderr  # values.schema.json
    # and the template's own check, for a render that skips the schema
    done = helm.run("template", RELEASE, str(CHART), "-f", str(values_file("baremetal")),
                    "--set", "balancer.state.type=tmpfs", "--skip-schema-validation",
                    check=False)
    assert done.returncode != 0
    assert 'balancer.state.type must be hostPath or emptyDir, not "tmpfs"' in done.stderr


def test_token_secret_is_mounted_into_daemons_and_controller(baremetal: Manifests,
                                                             helm: Helm) -> None:
    secrets = {d["metadata"]["name"]: d for d in baremetal.component("balancer").all("Secret")}
    secret = secrets[TOKEN_SECRET]
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert secret["type"] == "Opaque"
    # the API's bearer token, and the L2 heartbeats' HMAC key: a key of its own
    assert set(secret["data"]) == {"token", "heartbeat-key"}
    token = base64.b64decode(secret["data"]["token"]).decode()
    heartbeat_key = base64.b64decode(secret["data"]["heartbeat-key"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{48}", token)
    assert re.fullmatch(r"[A-Za-z0-9]{48}", heartbeat_key)
    assert heartbeat_key != token
    # generated: `helm template` has no cluster to read, so every render makes new ones
    # (an install's upgrades read the stored ones back: test_balancer_tls.py installs and
    # upgrades; GitOps users name their own Secret: the test below)
    again = {d["metadata"]["name"]: d for d in helm.template(
        values=[values_file("baremetal")]).component("balancer").all("Secret")}[TOKEN_SECRET]
    assert again["data"]["token"] != secret["data"]["token"]

    expected_volume = {"secret": {"secretName": TOKEN_SECRET, "defaultMode": 0o440,
                                  "items": [{"key": "token", "path": "token"}]}}
    # the daemon: --token-file is the mounted key (a directory mount, so rotation reaches it);
    # the heartbeat key is not mounted: the chart does not run L2 announcements
    pod, container = _pod(baremetal), _container(baremetal)
    assert _volume(pod, "token") == {"name": "token", **expected_volume}
    assert _mount(container, "token") == {"name": "token", "mountPath": DAEMON_TOKEN_DIR,
                                          "readOnly": True}
    args = container["args"]
    assert args[args.index("--token-file") + 1] == f"{DAEMON_TOKEN_DIR}/token"
    assert "--heartbeat-key-file" not in args and "--interface" not in args
    # the controller: the tokenFile of every baremetal.balancers entry
    deployment = baremetal.component("controller").one("Deployment")
    controller_pod = deployment["spec"]["template"]["spec"]
    assert _volume(controller_pod, "balancer-token") == {"name": "balancer-token",
                                                         **expected_volume}
    assert _mount(baremetal.container(), "balancer-token") == {
        "name": "balancer-token", "mountPath": CONTROLLER_TOKEN_DIR, "readOnly": True}


def test_gitops_existing_secrets_render_byte_identical(helm: Helm,
                                                       instances_values: Path) -> None:
    """With the token and the TLS Secret named (sealed-secrets, external-secrets,
    cert-manager), nothing random is rendered: two renders are the same bytes, so a GitOps
    tool sees no change, and both pods mount the named Secrets."""
    sets = ["balancer.token.existingSecret=my-token", "balancer.tls.existingSecret=my-tls"]
    values = [values_file("baremetal"), instances_values]
    first = helm.template_text(values=values, sets=sets)
    assert helm.template_text(values=values, sets=sets) == first
    manifests = Manifests([d for d in yaml.safe_load_all(first) if d])
    assert "Secret" not in manifests.kinds()
    pod, container = _pod(manifests), _container(manifests)
    assert _volume(pod, "token")["secret"]["secretName"] == "my-token"
    assert _volume(pod, "tls")["secret"]["secretName"] == "my-tls"
    args = container["args"]
    assert args[args.index("--token-file") + 1] == f"{DAEMON_TOKEN_DIR}/token"
    assert args[args.index("--tls-cert") + 1] == f"{TLS_DIR}/tls.crt"
    controller_pod = manifests.one("Deployment")["spec"]["template"]["spec"]
    assert _volume(controller_pod, "balancer-token")["secret"]["secretName"] == "my-token"
    assert _volume(controller_pod, "balancer-ca")["secret"]["secretName"] == "my-tls"
    assert {b["tokenFile"] for b in _balancers(manifests)} == {f"{CONTROLLER_TOKEN_DIR}/token"}
    # without them (the defaults) the render differs every time: the generated Secrets
    assert helm.template_text(values=values) != helm.template_text(values=values)
    # the token alone is enough when TLS is off
    plain = ["balancer.token.existingSecret=my-token", "balancer.tls.enabled=false"]
    http = [values_file("baremetal")]
    assert helm.template_text(values=http, sets=plain) == helm.template_text(values=http,
                                                                            sets=plain)


def test_the_daemons_get_no_kubernetes_api_access(baremetal: Manifests) -> None:
    """The daemon makes no Kubernetes API calls: no token in its pods, nothing bound to its
    ServiceAccount (an account of its own, so nothing granted to `default` reaches it)."""
    balancer = baremetal.component("balancer")
    sa = balancer.one("ServiceAccount")
    assert sa["metadata"]["name"] == BALANCER and sa["metadata"]["namespace"] == NAMESPACE
    assert sa["automountServiceAccountToken"] is False
    pod = _pod(baremetal)
    assert pod["serviceAccountName"] == BALANCER
    assert pod["automountServiceAccountToken"] is False
    # not the controller's identity
    assert baremetal.component("controller").one("ServiceAccount")[
        "metadata"]["name"] != BALANCER
    # no Role, binding or cluster-wide object for the daemons, and no binding of the whole
    # chart names their account
    assert [d["kind"] for d in balancer.docs if "Role" in d["kind"]] == []
    subjects = [s for d in baremetal.docs if d["kind"].endswith("RoleBinding")
                for s in d["subjects"]]
    assert subjects and all(s["name"] != BALANCER for s in subjects)


def test_headless_service_selects_the_daemons(baremetal: Manifests) -> None:
    service = baremetal.component("balancer").one("Service")
    labels = _daemonset(baremetal)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9450, "targetPort": "api",
                                         "protocol": "TCP"}]


def test_config_lists_the_instances_with_the_token_file(with_instances: Manifests,
                                                        baremetal: Manifests,
                                                        tmp_path: Path) -> None:
    assert _balancers(baremetal) == []  # no instances listed yet: addresses only
    assert _balancers(with_instances) == [
        {**instance, "tokenFile": f"{CONTROLLER_TOKEN_DIR}/token", "caFile": CONTROLLER_CA_FILE}
        for instance in INSTANCES]
    text = with_instances.config_text()
    config = yaml.safe_load(text)
    # config.baremetal passes through beside the balancers
    assert config["baremetal"]["healthCheck"] == {"intervalSeconds": 5, "timeoutSeconds": 2,
                                                  "healthyThreshold": 2,
                                                  "unhealthyThreshold": 3}
    assert config["baremetal"]["dataplane"] == "userspace"
    assert config["baremetal"]["statusPollSeconds"] == 15
    assert config["baremetal"]["drainSeconds"] == 10
    assert [p["name"] for p in config["baremetal"]["pools"]] == [
        p["name"] for p in yaml.safe_load(baremetal.config_text())["baremetal"]["pools"]]
    # the same checks as every example's config
    assert parse_config(text).provider == "baremetal"
    jsonschema.validate(config, json.loads(SCHEMA.read_text()))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    _, problems = validate_config(path)
    assert problems == []


def test_instances_need_a_name_and_url(helm: Helm) -> None:
    args = ["template", RELEASE, str(CHART), "-f", str(values_file("baremetal")),
            "--set", "balancer.instances[0].url=https://10.0.0.1:9450"]
    done = helm.run(*args, check=False)
    assert done.returncode != 0
    assert "at '/balancer/instances/0': missing property 'name'" in done.stderr
    # the template's own check, for a render that skips the schema
    done = helm.run(*args, "--skip-schema-validation", check=False)
    assert done.returncode != 0
    assert "balancer.instances[0].name is required" in done.stderr


def test_balancer_manifests_pass_the_deploy_checks(helm: Helm, with_instances: Manifests,
                                                   instances_values: Path) -> None:
    done = helm.run("lint", "--strict", str(CHART), "-f", str(values_file("baremetal")),
                    "-f", str(instances_values), "--set", "balancer.netAdminCapabilities=true")
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert "[ERROR]" not in done.stdout and "[WARNING]" not in done.stdout, done.stdout
    variants = [(with_instances, ["Secret", "Secret", "Secret"]),  # token, CA, serving cert
                (helm.template(values=[values_file("baremetal")],
                               sets=["balancer.state.type=emptyDir",
                                     "balancer.netAdminCapabilities=true",
                                     "balancer.existingConfigMap=static-balancers",
                                     "balancer.tls.enabled=false"]), ["Secret"])]
    for manifests, secrets in variants:
        balancer = manifests.component("balancer")
        assert balancer.kinds() == sorted(["DaemonSet", "Service", "ServiceAccount", *secrets])
        for doc in balancer.docs:
            labels = doc["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "lbctl-balancer"
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert labels["app.kubernetes.io/part-of"] == "lbctl"
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]
        for doc in manifests.docs:  # the controller's objects changed too (mount, config)
            assert validate_full(doc) == [], (doc["kind"], doc["metadata"]["name"])


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "baremetal"])
def test_nothing_of_the_balancer_with_cloud_values(helm: Helm, provider: str) -> None:
    manifests = helm.template(values=[values_file(provider)])
    assert "DaemonSet" not in manifests.kinds()
    assert "Secret" not in manifests.kinds()
    assert manifests.component("balancer").docs == []
    assert all(v["name"] != "balancer-token"
               for v in manifests.one("Deployment")["spec"]["template"]["spec"]["volumes"])
    assert all(m["name"] not in ("balancer-token", "balancer-ca")
               for m in manifests.container()["volumeMounts"])
    assert "balancers" not in (yaml.safe_load(manifests.config_text()).get("baremetal") or {})
    # instances alone do nothing without balancer.enabled
    listed = helm.template(values=[values_file(provider)],
                           sets=["balancer.instances[0].name=lb-1",
                                 "balancer.instances[0].url=https://10.0.0.1:9450"])
    assert "DaemonSet" not in listed.kinds()
    assert listed.config_text() == manifests.config_text()


def test_kustomize_overlay_adds_the_daemonset_and_says_how_to_make_the_secrets(
        baremetal: Manifests) -> None:
    overlay = DEPLOY / "kustomize" / "overlays" / "baremetal"
    kustomization_text = (overlay / "kustomization.yaml").read_text()
    kustomization = yaml.safe_load(kustomization_text)
    assert kustomization["resources"] == ["../../base", "resources.yaml"]
    added = {(d["kind"], d["metadata"]["name"])
             for d in yaml.safe_load_all((overlay / "resources.yaml").read_text()) if d}
    assert added == {(d["kind"], d["metadata"]["name"])
                     for d in baremetal.component("balancer").docs if d["kind"] != "Secret"}
    # the token, the heartbeat key and the certificate are random: never committed, created
    # by the user first; the chart's CA (read back only by its `lookup`) is not needed
    assert "kind: Secret" not in (overlay / "resources.yaml").read_text()
    assert (f"kubectl -n {NAMESPACE} create secret generic {TOKEN_SECRET} "
            '--from-literal=token="$(openssl rand -hex 24)" '
            '--from-literal=heartbeat-key="$(openssl rand -hex 24)"') in kustomization_text
    assert (f"# Create the Secret {TLS_SECRET} first: type kubernetes.io/tls with keys "
            "tls.crt, tls.key, ca.crt") in kustomization_text
    assert CA_SECRET not in kustomization_text
    for other in ("aws", "gcp", "azure"):
        assert not (DEPLOY / "kustomize" / "overlays" / other / "resources.yaml").exists()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    tmp = tmp_path_factory.mktemp("balancer-sandbox")
    with tls_sandbox(tmp) as box:
        yield box, tmp


def test_applies_strictly_and_the_daemons_may_do_nothing(
        sandbox: tuple[Sandbox, Path], with_instances: Manifests) -> None:
    box, tmp = sandbox
    admin = box.write_kubeconfig(tmp / "admin.kc")
    assert kubectl(tmp, admin, "create", "namespace", NAMESPACE).returncode == 0
    done = kubectl(tmp, admin, "apply", "--validate=strict", "-f", "-",
                    stdin=with_instances.yaml())
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    def stored(*what: str) -> dict[str, Any]:
        found = kubectl(tmp, admin, "-n", NAMESPACE, "get", *what, "-o", "json")
        assert found.returncode == 0, found.stderr
        doc: dict[str, Any] = json.loads(found.stdout)
        return doc

    assert stored("daemonset", BALANCER)["spec"]["template"]["spec"]["hostNetwork"] is True
    assert set(stored("secret", TOKEN_SECRET)["data"]) == {"token", "heartbeat-key"}
    tls = stored("secret", TLS_SECRET)
    assert tls["type"] == "kubernetes.io/tls"
    assert set(tls["data"]) == {"tls.crt", "tls.key", "ca.crt"}

    user = f"system:serviceaccount:{NAMESPACE}:{BALANCER}"
    kubeconfig = box.write_kubeconfig(tmp / "balancer.kc", box.issue_token(NAMESPACE, BALANCER),
                                      user=BALANCER)

    def can(verb: str, resource: str, *, namespace: str = NAMESPACE) -> str:
        found = kubectl(tmp, kubeconfig, "auth", "can-i", verb, resource, "-n", namespace)
        assert found.returncode in (0, 1), found.stderr
        return found.stdout.strip()

    # TLS, so kubectl sends the ServiceAccount's token (never over plain HTTP)
    whoami = kubectl(tmp, kubeconfig, "auth", "whoami", "-o",
                      "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == user, whoami.stderr
    # nothing at all (a token is issued here only to ask: the pods mount none)
    for verb, resource in [("create", "events"), ("patch", "events.events.k8s.io"),
                           ("get", "events"), ("list", "events"), ("get", "secrets"),
                           ("list", "services"), ("patch", "services"), ("get", "nodes"),
                           ("get", "configmaps"), ("create", "pods")]:
        assert can(verb, resource) == "no", (verb, resource)
    assert can("create", "events", namespace="default") == "no"


def test_workers_value_reaches_the_daemon(helm: Helm) -> None:
    for value in ("auto", "4"):
        manifests = helm.template(values=[values_file("baremetal")],
                                  sets=[f"balancer.workers={value}"])
        assert f"--workers={value}" in _container(manifests)["args"]
