"""The GCE side of `lbctl demo --provider gcp`: what the cluster owns, as gcloud would list it.

`GceView.show` prints the commands a user would type (`gcloud compute forwarding-rules list`,
`backend-services`, `health-checks`, `instance-groups`, `firewall-rules`, `addresses`) and
their answers as tables, read through google-cloud-compute's own REST clients (a `Reader`: the
provider's `GceClient` class, handed in by the demo, since lbctl's own modules never import a
cloud SDK). Only objects whose JSON `description` names the demo's cluster are shown: the
Service's (address, forwarding rule, backend service, firewall rules) and the cluster's
shared ones (the instance group in each zone, kube-proxy's check and its firewall).
`leftovers` counts them by kind: all zeros once the last Service is gone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from providers.gcp.names import owner

from .story import print_table, say

KINDS = ("forwarding rule", "backend service", "health check", "instance group",
         "firewall rule", "address")


class Reader(Protocol):
    """What the view needs of `providers.gcp.client.GceClient`."""

    compute: Any
    """google.cloud.compute_v1, for request messages."""

    def list(self, collection: str, method: str = "list", **request: Any,
             ) -> Iterator[dict[str, Any]]: ...


def base(url: str | None) -> str:
    """The last part of a GCE URL (`.../regions/us-central1` -> `us-central1`)."""
    return (url or "").rstrip("/").rsplit("/", 1)[-1]


def _ports(item: dict[str, Any]) -> str:
    if item.get("allPorts"):
        return "all"
    return ",".join(item.get("ports") or []) or item.get("portRange", "") or "-"


class GceView:
    """What the demo's cluster owns in GCE (`project`, `region`, `zones`), gcloud's way."""

    def __init__(self, gce: Reader, cluster: str, project: str, region: str,
                 zones: Sequence[str]) -> None:
        self.gce, self.cluster = gce, cluster
        self.project, self.region, self.zones = project, region, tuple(zones)

    def _ours(self, items: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted((i for i in items if owner(i.get("description")).get(
            "lbctl.io/cluster") == self.cluster), key=lambda i: str(i["name"]))

    def _regional(self, collection: str) -> list[dict[str, Any]]:
        return self._ours(self.gce.list(collection, project=self.project, region=self.region))

    def forwarding_rules(self) -> list[dict[str, Any]]:
        return self._regional("forwardingRules")

    def backend_services(self) -> list[dict[str, Any]]:
        return self._regional("regionBackendServices")

    def health_checks(self) -> list[dict[str, Any]]:
        return self._regional("regionHealthChecks") + self._ours(
            self.gce.list("healthChecks", project=self.project))

    def instance_groups(self) -> list[dict[str, Any]]:
        return [g for zone in self.zones for g in self._ours(
            self.gce.list("instanceGroups", project=self.project, zone=zone))]

    def firewalls(self) -> list[dict[str, Any]]:
        return self._ours(self.gce.list("firewalls", project=self.project))

    def addresses(self) -> list[dict[str, Any]]:
        return self._regional("addresses")

    def members(self, group: dict[str, Any]) -> list[str]:
        """The instances in one zonal group (`instance-groups list-instances`)."""
        body = self.gce.compute.InstanceGroupsListInstancesRequest(instance_state="ALL")
        return sorted(base(i["instance"]) for i in self.gce.list(
            "instanceGroups", "list_instances", project=self.project, zone=base(group["zone"]),
            instance_group=group["name"], instance_groups_list_instances_request_resource=body))

    # -- printing ----------------------------------------------------------------------------
    def show(self) -> None:
        self.show_forwarding_rules()
        self.show_backend_services()
        self.show_health_checks()
        self.show_instance_groups()
        self.show_firewalls()
        self.show_addresses()

    def show_forwarding_rules(self) -> None:
        say(f"gcloud compute forwarding-rules list --regions {self.region}")
        print_table([("NAME", "REGION", "IP_ADDRESS", "IP_PROTOCOL", "PORTS", "SCHEME",
                      "BACKEND_SERVICE", "LABELS"), *[
            (r["name"], base(r.get("region")), r.get("IPAddress", ""), r.get("IPProtocol", ""),
             _ports(r), r.get("loadBalancingScheme", ""), base(r.get("backendService")),
             ",".join(f"{k}={v}" for k, v in sorted((r.get("labels") or {}).items())))
            for r in self.forwarding_rules()]], "  ")

    def show_backend_services(self) -> None:
        say(f"gcloud compute backend-services list --regions {self.region}")
        print_table([("NAME", "BACKENDS", "PROTOCOL", "SCHEME", "HEALTH_CHECKS",
                      "SESSION_AFFINITY"), *[
            (b["name"], ",".join(f"{base(be['group'].rsplit('/instanceGroups/', 1)[0])}/"
                                 f"instanceGroups/{base(be['group'])}"
                                 for be in b.get("backends") or []) or "-",
             b.get("protocol", ""), b.get("loadBalancingScheme", ""),
             ",".join(base(h) for h in b.get("healthChecks") or []) or "-",
             b.get("sessionAffinity", "NONE"))
            for b in self.backend_services()]], "  ")

    def show_health_checks(self) -> None:
        say("gcloud compute health-checks list")
        rows = [("NAME", "REGION", "PROTOCOL", "PORT", "REQUEST_PATH", "INTERVAL", "UNHEALTHY")]
        for h in self.health_checks():
            kind = str(h.get("type", ""))
            detail = h.get(f"{kind.lower()}HealthCheck") or {}
            rows.append((h["name"], base(h.get("region")) or "global", kind,
                         str(detail.get("port", "")), detail.get("requestPath", "-"),
                         f"{h.get('checkIntervalSec', '')}s",
                         str(h.get("unhealthyThreshold", ""))))
        print_table(rows, "  ")

    def show_instance_groups(self) -> None:
        say("gcloud compute instance-groups list")
        groups = self.instance_groups()
        print_table([("NAME", "LOCATION", "SCOPE", "NETWORK", "MANAGED", "INSTANCES"), *[
            (g["name"], base(g.get("zone")), "zone", base(g.get("network")), "No",
             str(g.get("size", 0))) for g in groups]], "  ")
        for g in groups:
            say(f"gcloud compute instance-groups list-instances {g['name']} "
                f"--zone {base(g.get('zone'))}")
            print_table([("NAME",), *[(m,) for m in self.members(g)]], "  ")

    def show_firewalls(self) -> None:
        say("gcloud compute firewall-rules list")
        print_table([("NAME", "NETWORK", "DIRECTION", "ALLOW", "SRC_RANGES", "DEST_RANGES",
                      "TARGET_TAGS"), *[
            (f["name"], base(f.get("network")), f.get("direction", ""),
             ",".join(f"{a['IPProtocol']}:{','.join(a.get('ports') or ['all'])}"
                      for a in f.get("allowed") or []),
             ",".join(f.get("sourceRanges") or []) or "-",
             ",".join(f.get("destinationRanges") or []) or "-",
             ",".join(f.get("targetTags") or []) or "-")
            for f in self.firewalls()]], "  ")

    def show_addresses(self) -> None:
        say(f"gcloud compute addresses list --regions {self.region}")
        print_table([("NAME", "ADDRESS/RANGE", "TYPE", "NETWORK_TIER", "REGION", "STATUS"), *[
            (a["name"], a.get("address", ""), a.get("addressType", "EXTERNAL"),
             a.get("networkTier", "-"), base(a.get("region")), a.get("status", ""))
            for a in self.addresses()]], "  ")

    def leftovers(self) -> dict[str, int]:
        """What still names the cluster in its description, by kind (singular)."""
        return dict(zip(KINDS, (len(self.forwarding_rules()), len(self.backend_services()),
                                len(self.health_checks()), len(self.instance_groups()),
                                len(self.firewalls()), len(self.addresses())), strict=True))
