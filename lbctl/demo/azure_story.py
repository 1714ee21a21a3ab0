"""The steps of `lbctl demo --provider azure`, as a user would type them (see `lbctl.demo.azure`).

Kept apart from `azure` (which starts and stops the pieces) so the session reads top to bottom:
expose a Deployment as a LoadBalancer Service and show what ARM holds (`ArmView`) and what it
cost (the provider's own count of requests); then the point of this provider: 20 more Services
created at once land in the cluster's one shared load balancer in a handful of whole-LB writes
(the coalescer folds every Service's change that arrives within its batch window into one
etag-guarded PUT; upstream writes the LB once per Service, one after the other). Then a port
change (the Service's rule and NSG rule, on the same public IP), a new node (one write of the
shared pool for every Service at once), and the delete of everything, counted by ownership and
in the emulator's inventory. Each step waits on what the controller writes into the Services
(their conditions' observedGeneration), never on a sleep, and the verdict is checked against
what was read back from ARM, not claimed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import click

from ..kube import Kube
from .azure_view import ArmView, base, rows_of
from .cloud import expose_frontend, leftovers_problem, plural, show_leftovers
from .story import NS, print_services, say, wait_for

PORT, NEW_PORT = 80, 8080
WAVE = 20
LABEL = "lbctl-demo"
NodeJoin = Callable[[], tuple[str, str, dict[str, Any]]]


def cost(calls: Counter[str]) -> tuple[str, list[str]]:
    """`"N requests: W writes, R reads, P operation polls"` and the writes, `kind.verb xN`
    (the provider's counts: `loadBalancers.put`, `operations.get`, ...)."""
    writes: Counter[str] = Counter()
    reads = polls = 0
    for call, n in calls.items():
        kind, _, verb = call.rpartition(".")
        if kind == "operations":
            polls += n
        elif verb == "get":
            reads += n
        else:
            writes[call] += n
    summary = (f"{plural(sum(calls.values()), 'request')}: "
               f"{plural(sum(writes.values()), 'write')}, {plural(reads, 'read')}, "
               f"{plural(polls, 'operation poll')}")
    return summary, [f"{c}{f' x{n}' if n > 1 else ''}" for c, n in sorted(writes.items())]


def lb_writes(calls: Counter[str]) -> int:
    return calls["loadBalancers.put"] + calls["loadBalancers.delete"]


def ensured(svc: dict[str, Any], generation: int | None = None) -> bool:
    """An IP in the status and LoadBalancerProvisioning=False for this generation."""
    ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    wanted = generation or int(svc["metadata"].get("generation") or 1)
    return bool(ingress and ingress[0].get("ip")) and any(
        c["type"] == "LoadBalancerProvisioning" and c["status"] == "False"
        and int(c.get("observedGeneration") or 0) >= wanted
        for c in (svc.get("status") or {}).get("conditions") or [])


def service(name: str, port: int = PORT) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": name, LABEL: "azure"}},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"port": port, "targetPort": port, "protocol": "TCP"}]}}


class AzureStory:
    """The commands a user would type, and what kubectl and the az CLI would show."""

    def __init__(self, kube: Kube, arm: ArmView, provider_client: Any, join: NodeJoin) -> None:
        self.kube, self.arm, self.join = kube, arm, join
        self.provider_client = provider_client
        """The provider's ArmClient: `reset_calls()` answers its requests so far."""
        self.ip = self.ip_after_change = ""
        self.balancer = ""
        self.wave_ips: list[str] = []
        self.wave_lb_writes = -1
        self.ports_after_change: list[int] = []
        self.node_ip = ""
        self.node_lb_writes = -1
        self.left: dict[str, int] = {}
        self.inventory: dict[str, list[str]] = {}

    def _services(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kube.request(
            "GET", f"{NS}/services", query={"labelSelector": f"{LABEL}=azure"})["items"]
        return items

    def _cost(self, what: str) -> Counter[str]:
        calls: Counter[str] = self.provider_client.reset_calls()
        summary, writes = cost(calls)
        click.echo(f"\nThe provider's ARM requests for {what}: {summary}")
        click.echo(f"  writes: {', '.join(writes) or 'none'}")
        return calls

    def run(self) -> None:
        expose_frontend(self.kube, PORT, service("frontend"), self.provider_client.reset_calls)
        svc = wait_for(lambda: self._ensured("frontend"), "the controller to ensure the "
                       "Service's frontend (an IP and LoadBalancerProvisioning=False)", 90)
        self.ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        say("kubectl get services")
        print_services(self.kube)
        click.echo(f"\nEXTERNAL-IP {self.ip} is a Standard static public IP the provider "
                   f"created and tagged; it fronts the cluster's shared load balancer "
                   f"{self.arm.lb_name} (floating IP: the nodes see {self.ip} as destination "
                   "and kube-proxy takes it). No pod runs: the nodes are the world's VMs, which "
                   "the sandbox does not simulate.")
        self._cost("the create (public IP, then the LB and the NSG, each one PUT)")
        self.balancer = self._balancer_of("frontend")
        self.arm.show()
        self._wave()
        self._change_port()
        self._add_node()

    def _ensured(self, name: str, generation: int | None = None) -> dict[str, Any] | None:
        svc: dict[str, Any] = self.kube.request("GET", f"{NS}/services/{name}")
        return svc if ensured(svc, generation) else None

    def _balancer_of(self, service_name: str) -> str:
        """The balancer name the controller gave the Service, from its public IP's tags."""
        for pip in self.arm.public_ips():
            tags = pip.get("tags") or {}
            if tags.get("lbctl-service") == f"default/{service_name}":
                return str(tags.get("lbctl-balancer", ""))
        return ""

    def _wave(self) -> None:
        """20 Services at once: their changes meet in the LB's coalescer."""
        self.provider_client.reset_calls()
        say(f"kubectl apply -f web.yaml   # {WAVE} LoadBalancer Services web-1 .. web-{WAVE}, "
            f"port {PORT}")
        started = time.monotonic()
        for k in range(1, WAVE + 1):
            self.kube.request("POST", f"{NS}/services", body=service(f"web-{k}"))
            click.echo(f"service/web-{k} created")

        def all_ensured() -> list[dict[str, Any]] | None:
            wave = [s for s in self._services() if s["metadata"]["name"].startswith("web-")]
            return wave if len(wave) == WAVE and all(ensured(s) for s in wave) else None

        wave = wait_for(all_ensured, f"the controller to ensure all {WAVE} Services", 120)
        took = time.monotonic() - started
        self.wave_ips = sorted(s["status"]["loadBalancer"]["ingress"][0]["ip"] for s in wave)
        say("kubectl get services")
        print_services(self.kube)
        calls = self._cost(f"the {WAVE} Services")
        self.wave_lb_writes = lb_writes(calls)
        click.echo(f"\n{WAVE} Services in {took:.1f} s with "
                   f"{plural(self.wave_lb_writes, 'LB write')} (and "
                   f"{plural(calls['networkSecurityGroups.put'], 'NSG write')}): each "
                   "Service's change to the shared LB waits in its coalescer for the batch "
                   "window, and every change that arrived is applied to one read of the LB and "
                   "written in one PUT guarded by its etag (a 412 re-reads and re-applies). "
                   f"Upstream writes the whole LB once per Service, one at a time: {WAVE} PUTs "
                   "in a row, each a long-running operation. (The controller runs a worker "
                   "per Service here, so all of them reach the coalescer in one window; with "
                   "`workers: 8`, the default, they come in waves of 8, a write or so each.)")
        self.arm.show_lb()

    def _change_port(self) -> None:
        self.provider_client.reset_calls()
        patch = [{"op": "replace", "path": "/spec/ports/0/port", "value": NEW_PORT}]
        say(f"kubectl patch service frontend --type json -p '[{{\"op\": \"replace\", "
            f"\"path\": \"/spec/ports/0/port\", \"value\": {NEW_PORT}}}]'")
        patched = self.kube.request("PATCH", f"{NS}/services/frontend",
                                    content_type="application/json-patch+json", body=patch)
        click.echo("service/frontend patched")
        wait_for(lambda: self._ensured("frontend", int(patched["metadata"]["generation"])),
                 f"the controller to ensure port {NEW_PORT}", 60)
        self._cost("the port change")
        click.echo(f"  (the Service's rule {PORT} is replaced by {NEW_PORT} in the same LB "
                   "write; its probe, frontend and public IP stay; the NSG rule's port is "
                   "rewritten in place, at the same priority)")
        mine = [self.balancer]
        self.arm.show_rules(mine)
        self.arm.show_security_rules(mine)
        self.ports_after_change = sorted(
            int(r["properties"]["frontendPort"])
            for r in self._rules_of(self.balancer))
        self.ip_after_change = ",".join(
            str((p.get("properties") or {}).get("ipAddress")) for p in self.arm.public_ips()
            if (p.get("tags") or {}).get("lbctl-balancer") == self.balancer)
        say("kubectl get services")
        print_services(self.kube)

    def _rules_of(self, balancer: str) -> list[dict[str, Any]]:
        return rows_of(self.arm.parts("loadBalancingRules"), [balancer])

    def _add_node(self) -> None:
        """A VM joins the cluster: the shared pool takes its address, once for every
        Service (node sync), nothing else changes."""
        self.provider_client.reset_calls()
        name, ip, node = self.join()  # the VM exists before its kubelet registers
        say(f"az vm create -g {self.arm.group} -n {name} ...   # (here: the emulator's admin "
            "API)")
        say(f"kubectl create -f {name}.yaml   # its kubelet registers the Node "
            f"(providerID {node['spec']['providerID']})")
        self.kube.request("POST", "/api/v1/nodes", body=node)
        click.echo(f"node/{name} created")
        wait_for(lambda: any(a["properties"].get("ipAddress") == ip
                             for a in self.arm.pool_addresses()),
                 f"{name} ({ip}) in the load balancer's backend pool", 60)
        self.node_ip = ip
        calls = self._cost(f"the new node ({WAVE + 1} Services' node sync)")
        self.node_lb_writes = lb_writes(calls)
        self.arm.show_pool()

    def cleanup(self, inventory: Callable[[], dict[str, list[str]]], endpoint: str) -> None:
        """Delete every Service of the demo; count what names the cluster in ARM (through the
        SDK) and what the emulator at `endpoint` still holds of everything made through ARM
        (`inventory`)."""
        self.provider_client.reset_calls()
        say(f"kubectl delete services -l {LABEL}=azure")
        for svc in self._services():
            self.kube.request("DELETE", f"{NS}/services/{svc['metadata']['name']}")
            click.echo(f'service "{svc["metadata"]["name"]}" deleted')
        wait_for(lambda: not self._services(), "the Services to go", 120)
        click.echo("(each finalizer released after the provider took the Service's NSG rules, "
                   "then its frontend, rules and probes out of the shared LB (batched like the "
                   "creates), the LB itself with its last frontend, then its public IP)")
        self._cost("the delete")
        self.left = self.arm.leftovers()
        self.inventory = inventory()
        show_leftovers(self.left, f"# what is left in ARM for the cluster (tagged lbctl-cluster="
                       f"{self.arm.cluster}, or an NSG rule whose description names it), "
                       "through the same az listings", self.inventory, endpoint, "ARM",
                       "virtual network, subnet, NSG", lambda arm_id: f"{base(arm_id)} ({arm_id})")

    def verdict(self) -> str | None:
        if not self.ip:
            return "the Service never got an IP"
        if len(set(self.wave_ips)) != WAVE:
            return f"{len(set(self.wave_ips))} distinct IPs for the {WAVE} Services, not {WAVE}"
        if not 0 < self.wave_lb_writes <= WAVE // 2:
            return (f"the {WAVE} Services took {plural(self.wave_lb_writes, 'LB write')} (at "
                    f"most {WAVE // 2} expected: the writes were not batched)")
        if self.ports_after_change != [NEW_PORT]:
            return (f"after the port change the Service's rules hold ports "
                    f"{self.ports_after_change}, not [{NEW_PORT}]")
        if self.ip_after_change != self.ip:
            return (f"the port change moved the Service from {self.ip} to "
                    f"{self.ip_after_change or 'no address'}")
        if not self.node_ip:
            return "the new node never reached the backend pool"
        if self.node_lb_writes != 1:
            return (f"the new node took {plural(self.node_lb_writes, 'LB write')}, not one "
                    "pool write")
        return leftovers_problem("ARM", self.left, self.inventory)
