"""Regional backend services (`regionBackendServices`) of passthrough Network Load Balancers.

GCE's rules kept here for schemes EXTERNAL and INTERNAL (the others answer 501):
- `protocol` TCP, UDP or UNSPECIFIED (GCE's default HTTP is refused, so it must be set);
- exactly one health check: a regional one of the same region for EXTERNAL, global or regional
  for INTERNAL; it must exist and be ready;
- backends are zonal instance groups of the region, each once ("Duplicate instance groups in
  backend service."), `balancingMode` CONNECTION (GCE's default UTILIZATION is refused);
- an instance may belong to at most one load-balanced instance group (400
  instanceInMultipleLoadBalancedIgs), checked over every backend service's groups;
- PATCH and PUT need the current `fingerprint` (412 conditionNotMet otherwise, GCE's
  documented rule); the scheme and the network never change;
- a backend service a forwarding rule uses cannot be deleted.
`getHealth` reports each member of a backend group as HEALTHY unless the admin API set a state
for the instance (or for the instance behind this backend service), one entry per forwarding
rule of the backend service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .errors import invalid, not_found, not_implemented
from .fields import Body
from .instance_groups import multiple_load_balanced
from .kinds import Action, Kind
from .links import Key, parse_ref

SCHEMES = ("EXTERNAL", "INTERNAL")
OTHER_SCHEMES = ("EXTERNAL_MANAGED", "INTERNAL_MANAGED", "INTERNAL_SELF_MANAGED")
PROTOCOLS = ("TCP", "UDP", "UNSPECIFIED")
AFFINITIES = ("NONE", "CLIENT_IP", "CLIENT_IP_PROTO", "CLIENT_IP_PORT_PROTO")
HEALTH_STATES = ("HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "UNKNOWN")
"""What getHealth may report for an instance (the admin API sets it)."""


class BackendServices(Kind):
    collection = "backendServices"
    kind = "compute#backendService"
    api: ClassVar[dict[str, str]] = {"regions": "regionBackendServices"}
    label = "backend_service"
    patchable = True
    replaceable = True
    fingerprinted = True
    fields = frozenset({
        "affinityCookieTtlSec", "backends", "connectionDraining", "creationTimestamp",
        "description", "failoverPolicy", "fingerprint", "healthChecks", "id", "kind",
        "loadBalancingScheme", "logConfig", "name", "network", "port", "portName", "protocol",
        "region", "selfLink", "sessionAffinity", "timeoutSec"})
    supported = frozenset({
        "name", "description", "backends", "healthChecks", "loadBalancingScheme", "protocol",
        "sessionAffinity", "connectionDraining", "timeoutSec", "network", "fingerprint"})

    def normalize(self, key: Key, body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
        scheme = body.option("loadBalancingScheme", SCHEMES + OTHER_SCHEMES, "EXTERNAL")
        if scheme in OTHER_SCHEMES:
            raise not_implemented(f"A backend service with loadBalancingScheme {scheme}")
        protocol = body.text("protocol", "HTTP")
        if protocol not in PROTOCOLS:
            raise invalid("resource.protocol", protocol, f"Backend services with "
                          f"loadBalancingScheme {scheme} in a region must have protocol TCP, "
                          f"UDP or UNSPECIFIED.")
        affinity = body.text("sessionAffinity", "NONE")
        if affinity not in AFFINITIES:
            raise invalid("resource.sessionAffinity", affinity, f"Session affinity must be one "
                          f"of [{', '.join(AFFINITIES)}] for a passthrough load balancer.")
        obj: dict[str, Any] = {
            "name": key.name, "loadBalancingScheme": scheme, "protocol": protocol,
            "sessionAffinity": affinity, "healthChecks": [_health_check(key, body, scheme)],
            "timeoutSec": body.integer("timeoutSec", 1, 2**31 - 1, 30)}
        backends = _backends(key, body, scheme)
        if backends:
            obj["backends"] = backends
        draining = body.child("connectionDraining", ("drainingTimeoutSec",))
        obj["connectionDraining"] = {"drainingTimeoutSec": draining.integer(
            "drainingTimeoutSec", 0, 3600, 0) if draining else 0}
        description = body.text("description", max_len=2048)
        if description:
            obj["description"] = description
        network = body.text("network")
        if network:
            if scheme != "INTERNAL":
                raise invalid("resource.network", network,
                              "A network can only be set on an INTERNAL backend service.")
            obj["network"] = parse_ref(network, "resource.network",
                                       Key(key.project, "global", "networks", ""),
                                       "networks").url
        return obj

    def verify(self, key: Key, obj: dict[str, Any]) -> None:
        self.store.require(parse_ref(obj["healthChecks"][0], "resource.healthChecks[0]", key,
                                     "healthChecks"))
        groups = [parse_ref(b["group"], f"resource.backends[{i}].group", key, "instanceGroups")
                  for i, b in enumerate(obj.get("backends", []))]
        for group in groups:
            self.store.require(group)
        if "network" in obj:
            self.store.require(parse_ref(obj["network"], "resource.network", key, "networks"))
        balanced = self.store.load_balanced(besides=key) | {g.url for g in groups}
        for group in groups:
            for instance in self.store.members.get(group, []):
                if any(g != group and g.url in balanced for g in self.store.groups_of(instance)):
                    raise multiple_load_balanced(instance)

    def check_change(self, current: dict[str, Any], new: dict[str, Any]) -> None:
        for name in ("loadBalancingScheme", "network"):
            if current.get(name) != new.get(name):
                raise invalid(f"resource.{name}", new.get(name) or "",
                              f"The {name} of a backend service cannot be changed.")

    def actions(self) -> dict[str, tuple[str, Action]]:
        return {"getHealth": ("read", self.get_health)}

    def get_health(self, key: Key, data: dict[str, Any],
                   query: Mapping[str, str]) -> dict[str, Any]:
        service = self.store.get(key)
        if service is None:
            raise not_found(key.path)
        body = Body(data, "resourceGroupReference", supported=("group",), ignored=())
        group = parse_ref(body.text("group", need=True), body.field("group"), key,
                          "instanceGroups")
        if group.url not in [b["group"] for b in service.get("backends", [])]:
            raise invalid(body.field("group"), group.url,
                          "The instance group is not a backend of this backend service.")
        check = self.store.get(parse_ref(service["healthChecks"][0], "healthChecks", key,
                                         "healthChecks")) or {}
        port = next((v["port"] for v in check.values() if isinstance(v, dict) and "port" in v),
                    None)
        rules = [(k, o) for k, o in self.store.items("forwardingRules", key.scope)
                 if o.get("backendService") == key.url]
        statuses: list[dict[str, Any]] = []
        for instance in self.store.members.get(group, []):
            found = self.store.get(instance) or {}
            state = self.store.health.get(f"{key.path}|{instance.path}",
                                          self.store.health.get(instance.path, "HEALTHY"))
            entry: dict[str, Any] = {
                "instance": instance.url, "healthState": state,
                "ipAddress": found.get("networkInterfaces", [{}])[0].get("networkIP", "")}
            if port is not None:
                entry["port"] = port
            statuses.extend([{**entry, "forwardingRule": k.url, "forwardingRuleIp":
                              o.get("IPAddress", "")} for k, o in rules] or [entry])
        answer: dict[str, Any] = {"kind": "compute#backendServiceGroupHealth"}
        if statuses:
            answer["healthStatus"] = statuses
        return answer


def _health_check(key: Key, body: Body, scheme: str) -> str:
    checks = body.strings("healthChecks")
    if len(checks) != 1:
        raise invalid("resource.healthChecks", ", ".join(checks), "A backend service of a "
                      "passthrough load balancer needs exactly one health check.")
    check = parse_ref(checks[0], "resource.healthChecks[0]", key, "healthChecks")
    allowed = (key.scope,) if scheme == "EXTERNAL" else (key.scope, "global")
    if check.scope not in allowed:
        where = "a regional health check of the same region" if scheme == "EXTERNAL" else (
            "a global health check or a regional one of the same region")
        raise invalid("resource.healthChecks[0]", checks[0],
                      f"A {scheme} backend service needs {where}.")
    return check.url


def _backends(key: Key, body: Body, scheme: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, entry in enumerate(body.children(
            "backends", ("group", "balancingMode", "description", "failover"))):
        field = f"resource.backends[{index}]"
        group = parse_ref(entry.text("group", need=True), f"{field}.group", key,
                          "instanceGroups")
        if not group.scope.startswith("zones/") or group.region != key.region:
            raise invalid(f"{field}.group", group.url,
                          f"The instance group must be in a zone of region {key.region}.")
        if any(b["group"] == group.url for b in out):
            raise invalid(f"{field}.group", group.url,
                          "Duplicate instance groups in backend service.")
        mode = entry.text("balancingMode", "UTILIZATION")
        if mode != "CONNECTION":
            raise invalid(f"{field}.balancingMode", mode, f"Balancing mode must be CONNECTION "
                          f"for an {scheme} backend service.")
        backend: dict[str, Any] = {"group": group.url, "balancingMode": mode}
        description = entry.text("description", max_len=2048)
        if description:
            backend["description"] = description
        failover = entry.boolean("failover")
        if failover is not None:
            backend["failover"] = failover
        out.append(backend)
    return out
