"""MetalLB's documented annotation and pool examples give the documented results under lbctl.

Each test applies an example from MetalLB's documentation (repository metallb/metallb, the path
under `website/content/` is quoted in its docstring) through the official Kubernetes client to
a sandbox watched by the controller with the `baremetal` provider and no balancer daemons: what
the documentation promises there is an address (or none) and an event, not traffic. MetalLB's
`IPAddressPool` objects become entries of lbctl's `baremetal.pools` (same field names); the
`--lb-class` flag becomes `loadBalancerClasses`. Where lbctl deliberately differs from MetalLB the
docstring says so and the test asserts lbctl's behaviour.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from lbctl.controller.config import parse_config
from lbctl.controller.embedded import Embedded, running_controller
from lbctl.sandbox.app import SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated
from tests.conftest import client_for, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Cluster:
    core: client.CoreV1Api
    embedded: Embedded

    def apply(self, manifests: str, namespace: str = "default") -> None:
        """Create every Service of a YAML text (one or more documents), as `kubectl create -f`."""
        for doc in yaml.safe_load_all(manifests):
            self.core.create_namespaced_service(doc["metadata"].get("namespace", namespace),
                                                doc)

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})

    def ips(self, name: str, namespace: str = "default") -> list[str]:
        status = self.core.read_namespaced_service(name, namespace).status.load_balancer
        return [i.ip for i in (status.ingress or [])] if status else []

    def wait_ips(self, name: str, namespace: str = "default", count: int = 1) -> list[str]:
        def ready() -> list[str] | None:
            found = self.ips(name, namespace)
            return found if len(found) >= count else None

        got: list[str] = wait_for(ready, 20, f"{namespace}/{name} to get {count} address(es)")
        return got

    def events(self, name: str, namespace: str = "default") -> list[tuple[str, str, str]]:
        items = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}").items
        return [(e.type, e.reason, e.message or "") for e in items]

    def wait_warning(self, name: str, *words: str, namespace: str = "default",
                     reason: str = "AllocationFailed") -> str:
        """The message of a Warning event `reason` on the Service containing every word."""
        def found() -> str | None:
            for type_, why, message in self.events(name, namespace):
                if type_ == "Warning" and why == reason and all(w in message for w in words):
                    return message
            return None

        message: str = wait_for(found, 20, f"a Warning {reason} on {namespace}/{name} "
                                           f"naming {words}")
        return message

    def settle(self) -> None:
        """Every write so far reached the controller and it has nothing left to do: only then
        may a test assert that something did NOT happen."""
        controller = self.embedded.controller
        now = int(self.core.list_namespaced_config_map("default", limit=1)
                  .metadata.resource_version)
        wait_for(lambda: all(int(i.resource_version or 0) >= now
                             for i in (controller.services, controller.nodes)),
                 15, f"the informers to deliver resourceVersion {now}")
        wait_for(controller.quiet, 15, "the controller to finish what they delivered")


Start = Callable[[str], Cluster]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """`start(config_yaml)`: a fresh sandbox and a controller with that config (each test its
    own: the controller sees every Service and the pools are the test's)."""
    with contextlib.ExitStack() as stack:
        def begin(text: str) -> Cluster:
            thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=tmp_path / "kc",
                                                  bookmark_interval=0.5, workloads=False))
            box = thread.start()
            stack.callback(thread.stop)
            api = client_for(box)
            stack.callback(api.close)
            config = parse_config("clusterName: docs\nprovider: baremetal\n" + text)
            embedded = stack.enter_context(running_controller(tmp_path / "kc", config,
                                                              qps=500, burst=1000))
            return Cluster(client.CoreV1Api(api), embedded)

        yield begin


def _in(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


def _service(name: str, *, annotations: dict[str, str] | None = None, port: int = 80,
             protocol: str = "TCP", namespace: str = "default",
             labels: dict[str, str] | None = None, **spec: Any) -> str:
    """A Service manifest shaped as the docs' nginx example, as YAML text."""
    body = {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": annotations or {}, "labels": labels or {}},
            "spec": {"ports": [{"port": port, "targetPort": port, "protocol": protocol}],
                     "selector": {"app": "nginx"}, "type": "LoadBalancer", **spec}}
    return yaml.safe_dump(body)


# -- usage/_index.md: Requesting specific IPs ---------------------------------------------------

ONE_POOL = """
baremetal:
  pools:
  - name: default
    addresses: ["192.168.1.0/24"]
"""

NGINX_LOADBALANCERIPS = """
apiVersion: v1
kind: Service
metadata:
  name: nginx
  annotations:
    metallb.io/loadBalancerIPs: 192.168.1.100
spec:
  ports:
  - port: 80
    targetPort: 80
  selector:
    app: nginx
  type: LoadBalancer
"""


def test_loadbalancerips_annotation_gets_that_address(start: Start) -> None:
    """usage/_index.md, "Requesting specific IPs": the nginx Service annotated
    `metallb.io/loadBalancerIPs: 192.168.1.100` is set up with that address."""
    c = start(ONE_POOL)
    c.apply(NGINX_LOADBALANCERIPS)
    assert c.wait_ips("nginx") == ["192.168.1.100"]


def test_requested_address_not_owned_fails_with_a_warning_event(start: Start) -> None:
    """usage/_index.md: "If MetalLB does not own the requested address ... assignment will fail
    and MetalLB will log a warning event visible in kubectl describe service"."""
    c = start(ONE_POOL)
    c.apply(NGINX_LOADBALANCERIPS.replace("192.168.1.100", "10.20.30.40"))
    c.wait_warning("nginx", "metallb.io/loadBalancerIPs", "10.20.30.40",
                   'not in any address pool (pools: "default")')
    assert c.ips("nginx") == []


@pytest.mark.parametrize("prefix", ["metallb.io", "metallb.universe.tf"])
def test_loadbalancerips_under_either_prefix(start: Start, prefix: str) -> None:
    """usage/_index.md, "Requesting specific IPs" (older revisions of the page show the same
    example as `metallb.universe.tf/loadBalancerIPs`, which MetalLB still honours)."""
    c = start(ONE_POOL)
    c.apply(NGINX_LOADBALANCERIPS.replace("metallb.io/", f"{prefix}/"))
    assert c.wait_ips("nginx") == ["192.168.1.100"]


def test_requested_address_in_use_fails_and_the_holder_keeps_it(start: Start) -> None:
    """usage/_index.md: "... or if the address is already in use by another service,
    assignment will fail and MetalLB will log a warning event"."""
    c = start(ONE_POOL)
    c.apply(NGINX_LOADBALANCERIPS)
    assert c.wait_ips("nginx") == ["192.168.1.100"]
    c.apply(NGINX_LOADBALANCERIPS.replace("name: nginx", "name: nginx-2"))
    c.wait_warning("nginx-2", "192.168.1.100", "default/nginx", "does not allow sharing")
    assert c.ips("nginx-2") == []
    assert c.ips("nginx") == ["192.168.1.100"]


DUAL_STACK_POOL = """
baremetal:
  pools:
  - name: default
    addresses: ["192.168.1.0/24", "fc00:f853:ccd:e799::/124"]
"""


def test_loadbalancerips_comma_separated_for_a_dual_stack_service(start: Start) -> None:
    """usage/_index.md: "The annotation also supports a comma separated list of IPs to be used
    in case of Dual Stack services" and, under "IPv6 and dual stack services", the annotation
    (not `spec.loadBalancerIP`) is how a dual-stack Service asks for its two addresses."""
    c = start(DUAL_STACK_POOL)
    c.apply(NGINX_LOADBALANCERIPS.replace(
        "192.168.1.100", '"192.168.1.100,fc00:f853:ccd:e799::1"').replace(
        "spec:\n", "spec:\n  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]\n"))
    assert c.wait_ips("nginx", count=2) == ["192.168.1.100", "fc00:f853:ccd:e799::1"]


def test_dual_stack_service_gets_both_families_from_a_pool_that_has_both(start: Start) -> None:
    """usage/_index.md, "IPv6 and dual stack services": "In order for MetalLB to allocate IPs
    to a dual stack service, there must be at least one address pool having both addresses of
    version v4 and v6" (and with one, it does)."""
    c = start(DUAL_STACK_POOL)
    c.apply(_service("both", ipFamilyPolicy="RequireDualStack", ipFamilies=["IPv4", "IPv6"]))
    v4, v6 = c.wait_ips("both", count=2)
    assert _in(v4, "192.168.1.0/24") and _in(v6, "fc00:f853:ccd:e799::/124")


# -- usage/_index.md: a specific pool ------------------------------------------------------------

NGINX_ADDRESS_POOL = """
apiVersion: v1
kind: Service
metadata:
  name: nginx
  annotations:
    metallb.io/address-pool: production-public-ips
spec:
  ports:
  - port: 80
    targetPort: 80
  selector:
    app: nginx
  type: LoadBalancer
"""

TWO_POOLS = ONE_POOL + """  - name: production-public-ips
    addresses: ["42.176.25.64/30"]
"""


@pytest.mark.parametrize("prefix", ["metallb.io", "metallb.universe.tf"])
def test_address_pool_annotation_takes_an_address_of_that_pool(start: Start,
                                                               prefix: str) -> None:
    """usage/_index.md: "To request assignment from a specific pool, add the
    `metallb.io/address-pool` annotation to your service, with the name of the address pool as
    the annotation value" (the nginx / production-public-ips example; older revisions spell it
    `metallb.universe.tf/address-pool`). A plain Service still gets the first pool's."""
    c = start(TWO_POOLS)
    c.apply(NGINX_ADDRESS_POOL.replace("metallb.io/", f"{prefix}/"))
    c.apply(_service("plain"))
    assert _in(c.wait_ips("nginx")[0], "42.176.25.64/30")
    assert _in(c.wait_ips("plain")[0], "192.168.1.0/24")


def test_address_pool_annotation_naming_no_pool_fails_with_a_warning(start: Start) -> None:
    """usage/_index.md (address-pool example) with a pool name that is not configured: MetalLB
    answers `unknown pool "..."`; lbctl refuses too, with a Warning naming the annotation and
    the pools it has."""
    c = start(ONE_POOL)
    c.apply(NGINX_ADDRESS_POOL)
    c.wait_warning("nginx", "metallb.io/address-pool", "production-public-ips", '"default"')
    assert c.ips("nginx") == []


# -- usage/example.md: the full example -----------------------------------------------------------

FULL_EXAMPLE_POOLS = """
baremetal:
  pools:
  - name: production
    addresses: ["42.176.25.64/30"]
  - name: sandbox
    addresses: ["192.168.144.0/20"]
"""


def test_full_example_sandbox_pool_annotation_and_production_loadbalancerip(
        start: Start) -> None:
    """usage/example.md: sandbox Services carry `metallb.universe.tf/address-pool: sandbox`
    and "come up on some IP address within 192.168.144.0/20"; for production "we set
    `spec.loadBalancerIP` to the exact IP address that we want" (the deprecated field, still
    honoured) and MetalLB "will do exactly as it's told"."""
    c = start(FULL_EXAMPLE_POOLS)
    for i in (1, 2):
        c.apply(_service(f"sandbox-{i}",
                         annotations={"metallb.universe.tf/address-pool": "sandbox"}))
    c.apply(_service("shop", loadBalancerIP="42.176.25.66"))
    assert c.wait_ips("shop") == ["42.176.25.66"]
    got = {c.wait_ips(f"sandbox-{i}")[0] for i in (1, 2)}
    assert len(got) == 2 and all(_in(ip, "192.168.144.0/20") for ip in got)


# -- usage/_index.md: IP address sharing -----------------------------------------------------------

SHARING_POOL = """
baremetal:
  pools:
  - name: default
    addresses: ["1.2.3.0/29"]
"""

DNS_SERVICES = """
apiVersion: v1
kind: Service
metadata:
  name: dns-service-tcp
  namespace: default
  annotations:
    metallb.io/allow-shared-ip: "key-to-share-1.2.3.4"
spec:
  type: LoadBalancer
  loadBalancerIP: 1.2.3.4
  ports:
    - name: dnstcp
      protocol: TCP
      port: 53
      targetPort: 53
  selector:
    app: dns
---
apiVersion: v1
kind: Service
metadata:
  name: dns-service-udp
  namespace: default
  annotations:
    metallb.io/allow-shared-ip: "key-to-share-1.2.3.4"
spec:
  type: LoadBalancer
  loadBalancerIP: 1.2.3.4
  ports:
    - name: dnsudp
      protocol: UDP
      port: 53
      targetPort: 53
  selector:
    app: dns
"""


@pytest.mark.parametrize("prefix", ["metallb.io", "metallb.universe.tf"])
def test_dns_services_share_one_address(start: Start, prefix: str) -> None:
    """usage/_index.md, "IP address sharing": "an example configuration of two services that
    share the same ip address" (dns-service-tcp and dns-service-udp, key
    "key-to-share-1.2.3.4", loadBalancerIP 1.2.3.4); older revisions spell the annotation
    `metallb.universe.tf/allow-shared-ip`."""
    c = start(SHARING_POOL)
    c.apply(DNS_SERVICES.replace("metallb.io/", f"{prefix}/"))
    assert c.wait_ips("dns-service-tcp") == ["1.2.3.4"]
    assert c.wait_ips("dns-service-udp") == ["1.2.3.4"]


def test_same_key_and_different_ports_colocate_without_asking_for_an_address(
        start: Start) -> None:
    """usage/_index.md, "IP address sharing": with the same sharing key, different ports
    (tcp/80 and tcp/443) and the `Cluster` policy "MetalLB _may_ colocate the two services on
    the same IP, but does not have to". lbctl does: an address already shared under the key is
    preferred. A Service without the key gets an address of its own."""
    c = start(SHARING_POOL)
    key = {"metallb.io/allow-shared-ip": "web"}
    c.apply(_service("http", annotations=key, port=80))
    first = c.wait_ips("http")
    c.apply(_service("https", annotations=key, port=443))
    assert c.wait_ips("https") == first
    c.apply(_service("alone", port=8080))
    assert c.wait_ips("alone") != first


def _dns_pair(second: dict[str, Any]) -> tuple[str, str]:
    """The docs' two DNS Services, the second changed by `second` (metadata / spec keys)."""
    tcp, udp = yaml.safe_load_all(DNS_SERVICES)
    for where, changes in second.items():
        for key, value in changes.items():
            if value is None:
                udp[where].pop(key, None)
            else:
                udp[where][key] = value
    return yaml.safe_dump(tcp), yaml.safe_dump(udp)


@pytest.mark.parametrize(("second", "words"), [
    pytest.param({"metadata": {"annotations": {"metallb.io/allow-shared-ip": "other-key"}}},
                 ["spec.loadBalancerIP", "shared by default/dns-service-tcp under key",
                  '"key-to-share-1.2.3.4", not "other-key"'],
                 id="different-key"),
    pytest.param({"metadata": {"annotations": None}},
                 ["this Service allows no sharing"], id="no-key"),
    pytest.param({"spec": {"ports": [{"name": "dnstcp2", "protocol": "TCP", "port": 53,
                                      "targetPort": 53}]}},
                 ["spec.ports[0]", "TCP/53 is already used on 1.2.3.4 by default/dns-service-tcp"],
                 id="same-port"),
    pytest.param({"spec": {"externalTrafficPolicy": "Local"}},
                 ["spec.externalTrafficPolicy", "externalTrafficPolicy Cluster"],
                 id="local-and-cluster"),
])
def test_sharing_conditions_not_met_refuse_the_address_with_a_warning(
        start: Start, second: dict[str, Any], words: list[str]) -> None:
    """usage/_index.md, "IP address sharing": Services share only when "They both have the same
    sharing key", "They request the use of different ports" and "They both use the `Cluster`
    external traffic policy, or they both point to the _exact_ same set of pods". Each case
    breaks one condition on the docs' dns-service-udp, which asks for 1.2.3.4 by
    loadBalancerIP: the requested address is "already in use by another service", so the
    assignment fails with a Warning event naming what to fix; dns-service-tcp keeps it."""
    c = start(SHARING_POOL)
    tcp, udp = _dns_pair(second)
    c.apply(tcp)
    assert c.wait_ips("dns-service-tcp") == ["1.2.3.4"]
    c.apply(udp)
    c.wait_warning("dns-service-udp", *words)
    assert c.ips("dns-service-udp") == []
    assert c.ips("dns-service-tcp") == ["1.2.3.4"]


def test_sharing_conditions_not_met_without_a_requested_address_give_another(
        start: Start) -> None:
    """usage/_index.md, "IP address sharing": same key but the same port (tcp/53 twice) is not
    a sharing MetalLB allows; without `loadBalancerIP` the second Service is simply given
    another address rather than colocated."""
    c = start(SHARING_POOL)
    key = {"metallb.io/allow-shared-ip": "key-to-share"}
    c.apply(_service("dns-a", annotations=key, port=53))
    first = c.wait_ips("dns-a")
    c.apply(_service("dns-b", annotations=key, port=53))
    second = c.wait_ips("dns-b")
    assert second != first and _in(second[0], "1.2.3.0/29")


def test_two_local_services_with_the_same_selector_do_not_share_in_lbctl(start: Start) -> None:
    """usage/_index.md, "IP address sharing": MetalLB also lets two `Local` Services share
    when "they both point to the _exact_ same set of pods (i.e. the pod selectors are
    identical)". lbctl deliberately does not (the provider does not see selectors; see
    providers/baremetal/claims.py): it requires `Cluster` on both and says so in a Warning
    naming spec.externalTrafficPolicy; the first Service keeps the address."""
    c = start(SHARING_POOL)
    tcp, udp = (yaml.safe_load(text) for text in _dns_pair({}))
    for svc in (tcp, udp):
        svc["spec"]["externalTrafficPolicy"] = "Local"
    assert tcp["spec"]["selector"] == udp["spec"]["selector"] == {"app": "dns"}
    c.apply(yaml.safe_dump(tcp))
    assert c.wait_ips("dns-service-tcp") == ["1.2.3.4"]
    c.apply(yaml.safe_dump(udp))
    c.wait_warning("dns-service-udp", "spec.externalTrafficPolicy",
                   "externalTrafficPolicy Cluster")
    assert c.ips("dns-service-udp") == []
    assert c.ips("dns-service-tcp") == ["1.2.3.4"]


# -- configuration/_advanced_ipaddresspool_configuration.md ---------------------------------------

EXPENSIVE = """
baremetal:
  pools:
  - name: expensive
    addresses: ["42.176.25.64/30"]
    autoAssign: false
"""
CHEAP_AND_EXPENSIVE = EXPENSIVE + """  - name: cheap
    addresses: ["192.168.10.0/24"]
"""


def test_autoassign_false_pool_only_serves_services_that_ask_for_it(start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md, "Controlling automatic address
    allocation": the `cheap` (192.168.10.0/24) and `expensive` (42.176.25.64/30,
    `autoAssign: false`) pools. A plain Service gets a cheap address although `expensive` is
    listed first; "Addresses can still be specifically allocated from the expensive pool" by
    loadBalancerIP, the loadBalancerIPs annotation or the address-pool annotation."""
    c = start(CHEAP_AND_EXPENSIVE)
    c.apply(_service("plain"))
    c.apply(_service("by-ip", loadBalancerIP="42.176.25.65"))
    c.apply(_service("by-annotation",
                     annotations={"metallb.io/loadBalancerIPs": "42.176.25.66"}))
    c.apply(_service("by-pool", annotations={"metallb.io/address-pool": "expensive"}))
    assert _in(c.wait_ips("plain")[0], "192.168.10.0/24")
    assert c.wait_ips("by-ip") == ["42.176.25.65"]
    assert c.wait_ips("by-annotation") == ["42.176.25.66"]
    assert _in(c.wait_ips("by-pool")[0], "42.176.25.64/30")


def test_autoassign_false_alone_leaves_a_plain_service_pending_with_a_warning(
        start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md: with only the `expensive` pool
    (`autoAssign: false`) nothing is allocated automatically: a plain Service stays pending,
    with a Warning saying why."""
    c = start(EXPENSIVE)
    c.apply(_service("plain"))
    c.wait_warning("plain", '"expensive" has autoAssign: false')
    assert c.ips("plain") == []


def test_single_address_pool_written_as_slash_32(start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md: "To specify a single IP address
    in a pool, use `/32` in the CIDR notation (e.g. `42.176.25.64/32`)": the one Service gets
    exactly that address, a second finds none left (a Warning naming the pool)."""
    c = start("""
baremetal:
  pools:
  - name: single
    addresses: ["42.176.25.64/32"]
""")
    c.apply(_service("first"))
    assert c.wait_ips("first") == ["42.176.25.64"]
    c.apply(_service("second"))
    c.wait_warning("second", "no available IPs", '"single"')
    assert c.ips("second") == []


def _sample_pool(namespace_label: str = "") -> str:
    """A `default` pool, then MetalLB's ippool-ns-service-alloc-sample; its namespaceSelectors
    (`matchLabels` of the one `namespace_label`) only when one is given."""
    selectors = (f"""\
      namespaceSelectors:
      - matchLabels:
          {namespace_label}
""" if namespace_label else "")
    return f"""
baremetal:
  pools:
  - name: default
    addresses: ["192.168.10.0/24"]
  - name: ippool-ns-service-alloc-sample
    addresses: ["192.168.20.0/24"]
    avoidBuggyIPs: true
    serviceAllocation:
      priority: 50
      namespaces: [namespace-a, namespace-b]
{selectors}\
      serviceSelectors:
      - matchExpressions:
        - {{key: app, operator: In, values: [bar]}}
"""


SAMPLE_TRANSLATED = _sample_pool()


def test_service_allocation_pins_the_pool_to_namespaces_and_labelled_services(
        start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md, "Reduce scope of address
    allocation to specific Namespace and Service": ippool-ns-service-alloc-sample "is pinned to
    Service(s) which has a label matching with expression `key: app, operator: In, values:
    [bar]` created either in `namespace-a` or `namespace-b`" (its `namespaceSelectors` part:
    see the sample-pool test below). Such Services get its addresses (before the `default`
    pool, listed first; avoidBuggyIPs skips 192.168.20.0); others get `default`'s."""
    c = start(SAMPLE_TRANSLATED)
    for ns in ("namespace-a", "namespace-b", "namespace-c"):
        c.namespace(ns)
    c.apply(_service("bar-a", namespace="namespace-a", labels={"app": "bar"}))
    assert c.wait_ips("bar-a", "namespace-a") == ["192.168.20.1"]
    c.apply(_service("bar-b", namespace="namespace-b", labels={"app": "bar"}))
    assert c.wait_ips("bar-b", "namespace-b") == ["192.168.20.2"]
    c.apply(_service("foo-a", namespace="namespace-a", labels={"app": "foo"}))
    assert _in(c.wait_ips("foo-a", "namespace-a")[0], "192.168.10.0/24")
    c.apply(_service("bar-c", namespace="namespace-c", labels={"app": "bar"}))
    assert _in(c.wait_ips("bar-c", "namespace-c")[0], "192.168.10.0/24")


def test_explicit_request_for_a_pool_that_does_not_match_stays_pending(start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md, the note under "Reduce scope":
    "When a service explicitly chooses an IPAddressPool via `metallb.universe.tf/address-pool`
    annotation or an IP address via `spec.loadBalancerIP` or
    `metallb.universe.tf/loadBalancerIPs` annotation which doesn't match the service will stay
    in pending" (lbctl adds a Warning naming the pool's restriction)."""
    c = start(SAMPLE_TRANSLATED)
    c.namespace("namespace-c")
    ns = "namespace-c"
    c.apply(_service("by-pool", namespace=ns, labels={"app": "bar"}, annotations={
        "metallb.universe.tf/address-pool": "ippool-ns-service-alloc-sample"}))
    c.apply(_service("by-ip", namespace=ns, labels={"app": "bar"},
                     loadBalancerIP="192.168.20.10"))
    c.apply(_service("by-annotation", namespace=ns, labels={"app": "bar"}, annotations={
        "metallb.universe.tf/loadBalancerIPs": "192.168.20.11"}))
    c.wait_warning("by-pool", "metallb.universe.tf/address-pool", "serves only namespaces",
                   namespace=ns)
    c.wait_warning("by-ip", "spec.loadBalancerIP", "serves only namespaces", namespace=ns)
    c.wait_warning("by-annotation", "metallb.universe.tf/loadBalancerIPs",
                   "serves only namespaces", namespace=ns)
    for name in ("by-pool", "by-ip", "by-annotation"):
        assert c.ips(name, ns) == []


SAMPLE_VERBATIM = _sample_pool("foo: bar")


def test_sample_pool_with_a_namespace_label_selector(start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md, the sample pool verbatim,
    including `namespaceSelectors: [{matchLabels: {foo: bar}}]`: it "is pinned to Service(s)
    which has a label matching with expression `key: app, operator: In, values: [bar]` created
    either in `namespace-a` or `namespace-b` or any namespace has a label `foo:bar`". lbctl
    watches Namespaces for their labels, as MetalLB does (only because a pool selects on
    one), so the sample applies: app=bar Services in namespace-a and in namespace-x (labelled
    foo=bar) get 192.168.20.x (avoidBuggyIPs skips .0), one naming the pool there too; an
    app=bar Service in namespace-c (unlabelled) and an app=foo one in namespace-x get a
    `default` address."""
    c = start(SAMPLE_VERBATIM)
    c.namespace("namespace-a")
    c.namespace("namespace-c")
    c.namespace("namespace-x", {"foo": "bar"})
    c.apply(_service("bar", namespace="namespace-a", labels={"app": "bar"}))
    assert c.wait_ips("bar", "namespace-a") == ["192.168.20.1"]
    c.apply(_service("bar", namespace="namespace-x", labels={"app": "bar"}))
    assert c.wait_ips("bar", "namespace-x") == ["192.168.20.2"]
    c.apply(_service("named", namespace="namespace-x", labels={"app": "bar"}, annotations={
        "metallb.io/address-pool": "ippool-ns-service-alloc-sample"}))
    assert c.wait_ips("named", "namespace-x") == ["192.168.20.3"]
    c.apply(_service("bar", namespace="namespace-c", labels={"app": "bar"}))
    assert _in(c.wait_ips("bar", "namespace-c")[0], "192.168.10.0/24")
    c.apply(_service("foo", namespace="namespace-x", labels={"app": "foo"}))
    assert _in(c.wait_ips("foo", "namespace-x")[0], "192.168.10.0/24")
    assert c.embedded.controller.namespaces.informer is not None


def test_a_namespace_labelled_later_serves_its_pending_service(start: Start) -> None:
    """The sample pool again; a Service in an unlabelled namespace names the pool and stays
    pending (a Warning: the pool serves only matching namespaces). Labelling the namespace
    foo=bar, and touching nothing else, gives it 192.168.20.1 on its next pass: a label change
    re-ensures the LoadBalancer Services in that namespace, and only those (the Service in
    namespace-other, pending for the same reason, stays pending). A Service that already held
    a `default` address in the namespace keeps it: a held address never moves."""
    c = start(SAMPLE_VERBATIM)
    ns = "namespace-late"
    c.namespace(ns)
    c.namespace("namespace-other")
    c.apply(_service("held", namespace=ns, labels={"app": "bar"}))
    held = c.wait_ips("held", ns)
    assert _in(held[0], "192.168.10.0/24")
    for where in (ns, "namespace-other"):
        c.apply(_service("named", namespace=where, labels={"app": "bar"}, annotations={
            "metallb.io/address-pool": "ippool-ns-service-alloc-sample"}))
        c.wait_warning("named", "ippool-ns-service-alloc-sample", "serves only namespaces",
                       namespace=where)
    c.settle()
    before = c.core.read_namespaced_service("named", ns).metadata.generation
    registry = c.embedded.controller.metrics.registry
    name = "lbctl_namespace_sync_queued_total"
    queued = registry.get_sample_value(name) or 0.0
    c.core.patch_namespace(ns, {"metadata": {"labels": {"foo": "bar"}}})
    assert c.wait_ips("named", ns) == ["192.168.20.1"]
    c.settle()
    assert c.ips("held", ns) == held
    assert c.ips("named", "namespace-other") == []
    assert c.core.read_namespaced_service("named", ns).metadata.generation == before
    assert (registry.get_sample_value(name) or 0.0) - queued == 2  # held and named


def test_no_namespace_informer_without_a_pool_selecting_on_namespace_labels(
        start: Start) -> None:
    """Pools that select on no namespace label (here one selecting on
    `kubernetes.io/metadata.name`, which every namespace carries as its name) never make the
    controller list or watch Namespaces: the memory goal is measured without them. Proven
    after the controller allocated from that pool and has nothing left to do."""
    c = start(SAMPLE_WITH_NAMESPACE_SELECTOR)
    c.namespace("namespace-c")
    c.apply(_service("bar", namespace="namespace-c", labels={"app": "bar"}))
    assert c.wait_ips("bar", "namespace-c") == ["192.168.20.1"]
    c.settle()
    controller = c.embedded.controller
    assert controller.namespaces.informer is None and len(controller.namespaces) == 0


def test_pool_priority_lowest_number_first_and_unset_last(start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md: "If multiple `IPAddressPool`
    objects are available to a `Service`, MetalLB will ... first select the `IPAddressPool`
    with the lowest `priority` number ... If the `priority` field is unset or set to `0`, it
    will have the lowest priority". Three single-address pools all pinned to namespace-a, the
    unset one listed first: Services there take priority 10, then 50, then the unset one."""
    c = start("""
baremetal:
  pools:
  - name: unset
    addresses: ["192.168.30.1/32"]
    serviceAllocation: {namespaces: [namespace-a]}
  - name: fifty
    addresses: ["192.168.30.50/32"]
    serviceAllocation: {priority: 50, namespaces: [namespace-a]}
  - name: ten
    addresses: ["192.168.30.10/32"]
    serviceAllocation: {priority: 10, namespaces: [namespace-a]}
""")
    c.namespace("namespace-a")
    got = []
    for i in range(3):
        c.apply(_service(f"svc-{i}", namespace="namespace-a"))
        got += c.wait_ips(f"svc-{i}", "namespace-a")
    assert got == ["192.168.30.10", "192.168.30.50", "192.168.30.1"]


def test_avoid_buggy_ips_skips_dot_0_and_dot_255(start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md, "Handling buggy networks": with
    `avoidBuggyIPs` "the `.0` and the `.255` addresses will be avoided": the first address
    handed out from 192.168.20.0/24 is .1, and asking for .255 fails with a Warning saying
    the pool excludes it."""
    c = start("""
baremetal:
  pools:
  - name: buggy-safe
    addresses: ["192.168.20.0/24"]
    avoidBuggyIPs: true
""")
    c.apply(_service("first"))
    assert c.wait_ips("first") == ["192.168.20.1"]
    c.apply(_service("broadcast", loadBalancerIP="192.168.20.255"))
    c.wait_warning("broadcast", "192.168.20.255", "avoidBuggyIPs")
    assert c.ips("broadcast") == []


# -- installation/_index.md: Setting the LoadBalancer Class ---------------------------------------

def test_load_balancer_class_only_services_of_that_class_are_served(start: Start) -> None:
    """installation/_index.md, "Setting the LoadBalancer Class": MetalLB started with
    `--lb-class=<CLASS_NAME>` serves the Services whose `spec.loadBalancerClass` is that
    class. In lbctl that is `loadBalancerClasses: [metallb.io/metallb]`, with
    `handleClasslessServices: false` for MetalLB's behaviour of leaving class-less Services
    alone (lbctl's default would also serve them). Services of another class, or of none, get
    no address, no finalizer and no event from lbctl."""
    c = start("loadBalancerClasses: [metallb.io/metallb]\nhandleClasslessServices: false\n"
              + ONE_POOL)
    c.apply(_service("classless"))
    c.apply(_service("other", loadBalancerClass="example.com/other"))
    c.apply(_service("mine", loadBalancerClass="metallb.io/metallb"))
    assert _in(c.wait_ips("mine")[0], "192.168.1.0/24")
    c.settle()
    for name in ("classless", "other"):
        svc = c.core.read_namespaced_service(name, "default")
        assert c.ips(name) == []
        assert not svc.metadata.finalizers
        assert c.events(name) == []


SAMPLE_WITH_NAMESPACE_SELECTOR = _sample_pool("kubernetes.io/metadata.name: namespace-c")


def test_namespaces_or_namespace_selectors(start: Start) -> None:
    """configuration/_advanced_ipaddresspool_configuration.md, "Reduce scope of address
    allocation to specific Namespace and Service": the sample pool "is pinned to Service(s)
    which has a label matching with expression `key: app, operator: In, values: [bar]`
    created either in `namespace-a` or `namespace-b` or any namespace has a label `foo:bar`":
    `namespaces` OR `namespaceSelectors` (lbctl required both until this test). The
    selector here picks namespace-c by `kubernetes.io/metadata.name`, the label every
    namespace carries as its name (the sample's own `foo: bar`: see the test above).
    Expected: app=bar Services in namespace-a AND in namespace-c get 192.168.20.x; one in
    namespace-d gets a `default` address."""
    c = start(SAMPLE_WITH_NAMESPACE_SELECTOR)
    for ns in ("namespace-a", "namespace-c", "namespace-d"):
        c.namespace(ns)
        c.apply(_service("bar", namespace=ns, labels={"app": "bar"}))
    pools = {ns: "sample" if _in(c.wait_ips("bar", ns)[0], "192.168.20.0/24") else "default"
             for ns in ("namespace-a", "namespace-c", "namespace-d")}
    assert pools == {"namespace-a": "sample", "namespace-c": "sample", "namespace-d": "default"}
