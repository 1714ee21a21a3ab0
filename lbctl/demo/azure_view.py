"""The ARM side of `lbctl demo --provider azure`: what the cluster owns, as the az CLI lists it.

`ArmView` prints the commands a user would type (`az network lb show`, `lb frontend-ip list`,
`lb rule list`, `lb probe list`, `lb address-pool address list`, `public-ip list`, `nsg rule
list`) and their answers as tables, read through azure-mgmt-network (a `Reader`: the provider's
`ArmClient` class, handed in by the demo, since lbctl's own modules never import a cloud SDK).
What is shown is what carries the cluster's ownership: the shared load balancer `lbctl-<cluster>`
(tagged `lbctl-cluster`), the public IPs tagged with the cluster, and the NSG rules whose JSON
description names it; Services' parts inside the LB (frontends, rules, probes) have no tags, so
`rows_of` narrows them by the names `providers.azure.names` gives one balancer.
`leftovers` counts what still names the cluster, by kind: all zeros once the last Service is
gone (the LB goes with its last frontend).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from providers.azure import names

from .story import print_table, say

KINDS = ("load balancer", "public IP", "NSG rule")


class Reader(Protocol):
    """What the view needs of `providers.azure.client.ArmClient`: REST JSON bodies."""

    def get(self, kind: str, *names: str) -> dict[str, Any] | None: ...

    def list(self, kind: str, resource_group: str) -> list[dict[str, Any]]: ...


def base(arm_id: str | None) -> str:
    """The last part of an ARM ID (`.../publicIPAddresses/lb-x` -> `lb-x`)."""
    return (arm_id or "").rstrip("/").rsplit("/", 1)[-1]


def _props(item: dict[str, Any]) -> dict[str, Any]:
    return dict(item.get("properties") or {})


def _ref(item: dict[str, Any], key: str) -> str:
    return base((_props(item).get(key) or {}).get("id")) or "-"


class ArmView:
    """What the demo's cluster owns in one resource group, the az CLI's way."""

    def __init__(self, arm: Reader, cluster: str, resource_group: str, nsg: str) -> None:
        self.arm, self.cluster, self.group, self.nsg = arm, cluster, resource_group, nsg
        self.lb_name = names.load_balancer(cluster, internal=False)
        self.pool = names.backend_pool(cluster)

    # -- reads -------------------------------------------------------------------------------
    def load_balancers(self) -> list[dict[str, Any]]:
        return sorted((lb for lb in self.arm.list("loadBalancers", self.group)
                       if names.is_owned(lb.get("tags"), self.cluster)),
                      key=lambda lb: str(lb["name"]))

    def load_balancer(self) -> dict[str, Any] | None:
        return self.arm.get("loadBalancers", self.group, self.lb_name)

    def parts(self, kind: str) -> list[dict[str, Any]]:
        """The shared LB's `frontendIPConfigurations`, `loadBalancingRules`, `probes`."""
        return list(_props(self.load_balancer() or {}).get(kind) or [])

    def pool_addresses(self) -> list[dict[str, Any]]:
        pools = self.parts("backendAddressPools")
        return [a for p in pools if p.get("name") == self.pool
                for a in _props(p).get("loadBalancerBackendAddresses") or []]

    def public_ips(self) -> list[dict[str, Any]]:
        return sorted((p for p in self.arm.list("publicIPAddresses", self.group)
                       if names.is_owned(p.get("tags"), self.cluster)),
                      key=lambda p: str(p["name"]))

    def security_rules(self) -> list[dict[str, Any]]:
        nsg = self.arm.get("networkSecurityGroups", self.group, self.nsg) or {}
        return sorted((r for r in _props(nsg).get("securityRules") or []
                       if self._ours(_props(r).get("description"))),
                      key=lambda r: int(_props(r).get("priority") or 0))

    def _ours(self, description: str | None) -> bool:
        try:
            record = json.loads(description or "")
        except ValueError:
            return False
        return isinstance(record, dict) and record.get(names.KEY_CLUSTER) == self.cluster

    def leftovers(self) -> dict[str, int]:
        """What still names the cluster, by kind (singular)."""
        return dict(zip(KINDS, (len(self.load_balancers()), len(self.public_ips()),
                                len(self.security_rules())), strict=True))

    # -- printing ----------------------------------------------------------------------------
    def show(self, balancers: Sequence[str] | None = None) -> None:
        """Every listing; the LB's parts narrowed to `balancers` when given."""
        self.show_lb()
        self.show_frontends(balancers)
        self.show_rules(balancers)
        self.show_probes(balancers)
        self.show_pool()
        self.show_public_ips(balancers)
        self.show_security_rules(balancers)

    def _lb_args(self) -> str:
        return f"-g {self.group} --lb-name {self.lb_name}"

    def show_lb(self) -> None:
        say(f"az network lb show -g {self.group} -n {self.lb_name} -o table")
        lb = self.load_balancer()
        if lb is None:
            print_table([("(ResourceNotFound)",)], "  ")
            return
        p = _props(lb)
        print_table([("Name", "Location", "Sku", "Frontends", "Rules", "Probes", "Pools",
                      "ProvisioningState", "Tags"),
                     (lb["name"], lb.get("location", ""), (lb.get("sku") or {}).get("name", ""),
                      *(str(len(p.get(k) or [])) for k in (
                          "frontendIPConfigurations", "loadBalancingRules", "probes",
                          "backendAddressPools")),
                      p.get("provisioningState", ""), _tags(lb))], "  ")

    def show_frontends(self, balancers: Sequence[str] | None = None) -> None:
        say(f"az network lb frontend-ip list {self._lb_args()} -o table")
        print_table([("Name", "PublicIPAddress", "PrivateIPAddress", "Subnet",
                      "ProvisioningState"), *[
            (f["name"], _ref(f, "publicIPAddress"), _props(f).get("privateIPAddress") or "-",
             _ref(f, "subnet"), _props(f).get("provisioningState", ""))
            for f in rows_of(self.parts("frontendIPConfigurations"), balancers)]], "  ")

    def show_rules(self, balancers: Sequence[str] | None = None) -> None:
        say(f"az network lb rule list {self._lb_args()} -o table")
        rows = [("Name", "Protocol", "FrontendPort", "BackendPort", "FrontendIPConfiguration",
                 "Probe", "FloatingIP", "IdleTimeout", "TcpReset", "LoadDistribution")]
        for r in rows_of(self.parts("loadBalancingRules"), balancers):
            p = _props(r)
            rows.append((r["name"], p.get("protocol", ""), str(p.get("frontendPort", "")),
                         str(p.get("backendPort", "")), _ref(r, "frontendIPConfiguration"),
                         _ref(r, "probe"), str(p.get("enableFloatingIP", False)),
                         str(p.get("idleTimeoutInMinutes", "-")),
                         str(p.get("enableTcpReset", False)),
                         p.get("loadDistribution", "Default")))
        print_table(rows, "  ")

    def show_probes(self, balancers: Sequence[str] | None = None) -> None:
        say(f"az network lb probe list {self._lb_args()} -o table")
        print_table([("Name", "Protocol", "Port", "RequestPath", "IntervalInSeconds",
                      "NumberOfProbes"), *[
            (p["name"], _props(p).get("protocol", ""), str(_props(p).get("port", "")),
             _props(p).get("requestPath") or "-", str(_props(p).get("intervalInSeconds", "")),
             str(_props(p).get("numberOfProbes", "")))
            for p in rows_of(self.parts("probes"), balancers)]], "  ")

    def show_pool(self) -> None:
        say(f"az network lb address-pool address list {self._lb_args()} --pool-name "
            f"{self.pool} -o table")
        print_table([("Name", "IpAddress", "VirtualNetwork"), *[
            (a["name"], _props(a).get("ipAddress", ""), _ref(a, "virtualNetwork"))
            for a in sorted(self.pool_addresses(), key=lambda a: str(a["name"]))]], "  ")

    def show_public_ips(self, balancers: Sequence[str] | None = None) -> None:
        say(f"az network public-ip list -g {self.group} -o table")
        ips = [p for p in self.public_ips()
               if balancers is None or (p.get("tags") or {}).get(names.TAG_BALANCER)
               in balancers]
        print_table([("Name", "Address", "Sku", "AllocationMethod", "Service",
                      "ProvisioningState"), *[
            (p["name"], _props(p).get("ipAddress", ""), (p.get("sku") or {}).get("name", ""),
             _props(p).get("publicIPAllocationMethod", ""),
             (p.get("tags") or {}).get(names.TAG_SERVICE, "-"),
             _props(p).get("provisioningState", "")) for p in ips]], "  ")

    def show_security_rules(self, balancers: Sequence[str] | None = None) -> None:
        say(f"az network nsg rule list -g {self.group} --nsg-name {self.nsg} -o table")
        rows = [("Name", "Priority", "Access", "Protocol", "Direction", "SourceAddressPrefixes",
                 "DestinationAddressPrefixes", "DestinationPortRanges")]
        for r in rows_of(self.security_rules(), balancers):
            p = _props(r)
            rows.append((r["name"], str(p.get("priority", "")), p.get("access", ""),
                         p.get("protocol", ""), p.get("direction", ""),
                         _joined(p, "sourceAddressPrefix"),
                         _joined(p, "destinationAddressPrefix"),
                         _joined(p, "destinationPortRange")))
        print_table(rows, "  ")


def rows_of(items: list[dict[str, Any]], balancers: Sequence[str] | None
            ) -> list[dict[str, Any]]:
    """`items` that are one of `balancers`' parts by name (all of them for None)."""
    if balancers is None:
        return items
    return [i for i in items if any(names.owns_part(b, str(i.get("name", "")))
                                    for b in balancers)]


def _joined(props: dict[str, Any], key: str) -> str:
    """ARM's singular or plural field (`sourceAddressPrefix` / `sourceAddressPrefixes`)."""
    many = props.get(f"{key}es") or props.get(f"{key}s") or []
    return ",".join(many) or str(props.get(key) or "-")


def _tags(item: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((item.get("tags") or {}).items())
                    if k == names.TAG_CLUSTER)
