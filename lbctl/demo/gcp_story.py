"""The steps of `lbctl demo --provider gcp`, as a user would type them (see `lbctl.demo.gcp`).

Kept apart from `gcp` (which starts and stops the pieces) so the session reads top to bottom:
expose a Deployment as a LoadBalancer Service, wait for its IP and for the controller to call
it ensured, show what GCE holds (`GceView`) and what it cost (the provider's own count of
requests, by kind), change the Service's port and show the forwarding rule replaced on the
same address, delete the Service and count what is left. Each step waits on what the
controller writes into the Service (its conditions' observedGeneration), never on a sleep, and
the verdict is checked against what was read back from GCE, not claimed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import click

from ..kube import Kube
from .cloud import (
    condition,
    delete_frontend,
    expose_frontend,
    frontend_service,
    leftovers_problem,
    plural,
    show_leftovers,
)
from .gcp_view import GceView
from .story import NS, print_services, print_table, say, wait_for

SERVICE = f"{NS}/services/frontend"
PORT, NEW_PORT = 80, 8080
READS = frozenset({"get", "list", "aggregated_list", "get_health", "list_instances"})


def cost(calls: Counter[str]) -> tuple[str, list[str]]:
    """`"N requests: W writes, R reads, P operation polls"` and the writes, `kind.method xN`."""
    writes: Counter[str] = Counter()
    reads = polls = 0
    for call, n in calls.items():
        method = call.rsplit(".", 1)[-1]
        if method == "wait":
            polls += n
        elif method in READS:
            reads += n
        else:
            writes[call] += n
    summary = (f"{plural(sum(calls.values()), 'request')}: "
               f"{plural(sum(writes.values()), 'write')}, "
               f"{plural(reads, 'read')}, {plural(polls, 'operation poll')}")
    return summary, [f"{c}{f' x{n}' if n > 1 else ''}" for c, n in sorted(writes.items())]


class GcpStory:
    """The commands a user would type, and what kubectl and gcloud would show."""

    def __init__(self, kube: Kube, gce: GceView, provider_client: Any,
                 join: Callable[[], tuple[str, str, dict[str, Any]]]) -> None:
        self.kube = kube
        self.gce = gce
        self.provider_client = provider_client
        """The provider's GceClient: `reset_calls()` answers its requests so far."""
        self.join = join
        """Makes one more instance in GCE; answers (name, zone, its Node)."""
        self.joined: list[str] = []
        self.ip = ""
        self.ports_after_change: list[str] = []
        self.ip_after_change = ""
        self.left: dict[str, int] = {}
        self.inventory: dict[str, list[str]] = {}

    def run(self) -> None:
        created = expose_frontend(self.kube, PORT, frontend_service(PORT),
                                  self.provider_client.reset_calls)
        svc = wait_for(lambda: self._ensured(created["metadata"].get("generation", 1)),
                       "the controller to ensure the Service's load balancer (an IP and "
                       "LoadBalancerProvisioning=False)", 90)
        self.ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        say("kubectl get services")
        print_services(self.kube)
        ingress = svc["status"]["loadBalancer"]["ingress"][0]
        click.echo(f"\nEXTERNAL-IP {self.ip} is a static regional address the provider "
                   f"reserved (ipMode {ingress.get('ipMode', 'VIP')}: GCE's passthrough "
                   "balancer delivers packets to the nodes with this IP as destination). No pod "
                   "runs: the nodes are the world's instances, which the sandbox does not "
                   "simulate; the balancer targets the nodes all the same.")
        self._cost("the create")
        self.gce.show()
        self._change_port()
        self._add_node()

    def _ensured(self, generation: int) -> dict[str, Any] | None:
        svc: dict[str, Any] = self.kube.request("GET", SERVICE)
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        cond = condition(svc, "LoadBalancerProvisioning")
        done = (cond is not None and cond["status"] == "False"
                and int(cond.get("observedGeneration") or 0) >= generation)
        return svc if ingress and ingress[0].get("ip") and done else None

    def _cost(self, what: str) -> None:
        summary, writes = cost(self.provider_client.reset_calls())
        click.echo(f"\nThe provider's GCE requests for {what}: {summary}")
        click.echo(f"  writes: {', '.join(writes) or 'none'}")

    def _change_port(self) -> None:
        say(f"kubectl patch service frontend --type json -p '[{{\"op\": \"replace\", "
            f"\"path\": \"/spec/ports/0/port\", \"value\": {NEW_PORT}}}]'")
        patched = self.kube.request(
            "PATCH", SERVICE, content_type="application/json-patch+json",
            body=[{"op": "replace", "path": "/spec/ports/0/port", "value": NEW_PORT}])
        click.echo("service/frontend patched")
        wait_for(lambda: self._ensured(int(patched["metadata"]["generation"])),
                 f"the controller to ensure port {NEW_PORT}", 60)
        self._cost("the port change")
        click.echo("  (a forwarding rule cannot change in place: it is replaced, on the same "
                   "reserved address; the clients' firewall rule is patched)")
        self.gce.show_forwarding_rules()
        self.gce.show_firewalls()
        rules = self.gce.forwarding_rules()
        self.ports_after_change = [p for r in rules for p in r.get("ports") or []]
        self.ip_after_change = ",".join(sorted({str(r.get("IPAddress")) for r in rules}))
        say("kubectl get services")
        print_services(self.kube)

    def _add_node(self) -> None:
        """A VM joins the cluster: its zone's shared instance group takes it, once for every
        Service (node sync), nothing else changes."""
        self.provider_client.reset_calls()
        name, zone, node = self.join()  # the instance exists before its kubelet registers
        say(f"gcloud compute instances create {name} --zone {zone} --tags "
            f"{self.gce.cluster}-node   # (here: the emulator's admin API)")
        say(f"kubectl create -f {name}.yaml   # its kubelet registers the Node "
            f"(providerID {node['spec']['providerID']})")
        self.kube.request("POST", "/api/v1/nodes", body=node)
        click.echo(f"node/{name} created")
        group = wait_for(lambda: next((g for g in self.gce.instance_groups()
                                       if g["zone"].endswith(f"/{zone}")
                                       and name in self.gce.members(g)), None),
                         f"{name} in the instance group of {zone}", 60)
        self.joined = self.gce.members(group)
        self._cost("the new node (the node sync, for every Service at once)")
        say(f"gcloud compute instance-groups list-instances {group['name']} --zone {zone}")
        print_table([("NAME",), *[(m,) for m in self.joined]], "  ")

    def cleanup(self, inventory: Callable[[], dict[str, list[str]]], endpoint: str) -> None:
        """Delete the Service; count what names the cluster in GCE (through the SDK) and what
        the emulator at `endpoint` still holds of everything made through Compute
        (`inventory`)."""
        self.provider_client.reset_calls()
        delete_frontend(self.kube)
        click.echo('service "frontend" deleted (finalizer released after the provider deleted '
                   "the forwarding rule, the address, the firewall rules, the backend service, "
                   "and with the cluster's last Service the shared instance groups and "
                   "kube-proxy's check)")
        self._cost("the delete")
        self.left = self.gce.leftovers()
        self.inventory = inventory()
        show_leftovers(self.left, f"# what is left in GCE for the cluster (a description naming "
                       f"cluster {self.gce.cluster}), through the same gcloud listings",
                       self.inventory, endpoint, "Compute",
                       "network, subnetworks, instances")

    def verdict(self) -> str | None:
        if not self.ip:
            return "the Service never got an IP"
        if self.ports_after_change != [str(NEW_PORT)]:
            return (f"after the port change the forwarding rules hold ports "
                    f"{self.ports_after_change}, not [{NEW_PORT}]")
        if self.ip_after_change != self.ip:
            return (f"the port change moved the Service from {self.ip} to "
                    f"{self.ip_after_change or 'no address'}")
        if not self.joined:
            return "the new node never reached its zone's instance group"
        return leftovers_problem("GCE", self.left, self.inventory)
