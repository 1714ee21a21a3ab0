"""loadBalancers: Standard SKU, written whole (one PUT) or a backend pool at a time.

Frontends are public (`publicIPAddress`: an existing, Succeeded, Standard address in the same
location, in no other frontend: PublicIPAndLBSkuDoNotMatch, PublicIPReferencedByMultipleIPConfigs)
or internal (`subnet` + a Static `privateIPAddress` free in that subnet, or Dynamic: the first
free one, kept while the frontend stays on that subnet); a load balancer is one or the other,
as Azure's `<cluster>` / `<cluster>-internal` pair reflects. Pools, probes and rules are checked
in `lb_parts`. Standard limits are enforced (600 frontends, 1,500 rules, 1,000 probes per load
balancer by default; `settings` lowers them for tests). Rendering adds ARM's read-only
back-references (`loadBalancingRules` on frontends, pools and probes).
"""

from __future__ import annotations

from typing import Any

from . import lb_parts
from .errors import bad_request, invalid
from .ids import Rid
from .kinds import Kind, Refs, child_entry, children
from .networks import check_private_ip, free_private_ip, held_private_ips


class LoadBalancers(Kind):
    type = "loadBalancers"
    writable_children = ("backendAddressPools",)
    readable_children = ("frontendIPConfigurations", "backendAddressPools", "probes",
                         "loadBalancingRules")

    def sku(self, body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
        sku = body.get("sku") or {}
        name = str(sku.get("name", "Standard")) if isinstance(sku, dict) else ""
        if name != "Standard":
            raise bad_request("BasicSkuLoadBalancerNotSupported" if name == "Basic" else
                              "InvalidRequestFormat",
                              f"Load balancer sku {name!r}: only Standard is emulated (Basic "
                              "load balancers were retired in September 2025).")
        return {"name": "Standard", "tier": "Regional"}

    def properties(self, rid: Rid, body: dict[str, Any], props: dict[str, Any],
                   current: dict[str, Any] | None, location: str) -> dict[str, Any]:
        settings = self.store.settings
        refs = Refs(self.store, location)
        frontends = self._frontends(rid, props.get("frontendIPConfigurations"), current, refs)
        pool_list = lb_parts.pools(rid, props.get("backendAddressPools"), refs,
                                   settings.max_addresses)
        probe_list = lb_parts.probes(rid, props.get("probes"))
        rule_list = lb_parts.rules(rid, props.get("loadBalancingRules"), frontends, pool_list,
                                   probe_list)
        for what, items, limit in (
                ("FrontendIPConfigurations", frontends, settings.max_frontends),
                ("LoadBalancingRules", rule_list, settings.max_rules),
                ("Probes", probe_list, settings.max_probes),
                ("BackendAddressPools", pool_list, settings.max_pools)):
            if len(items) > limit:
                raise bad_request(f"LoadBalancer{what}LimitReached",
                                  f"Load balancer {rid.name} would have {len(items)} {what}; "
                                  f"the limit of a Standard load balancer is {limit}.")
        if any(k in props and props[k] for k in ("inboundNatRules", "inboundNatPools",
                                                  "outboundRules")):
            raise bad_request("NotImplemented", "inboundNatRules, inboundNatPools and "
                                                "outboundRules are not emulated.")
        return {"frontendIPConfigurations": frontends, "backendAddressPools": pool_list,
                "probes": probe_list, "loadBalancingRules": rule_list}

    def _frontends(self, rid: Rid, items: Any, current: dict[str, Any] | None,
                   refs: Refs) -> list[dict[str, Any]]:
        before = {fe["name"].lower(): fe["properties"]
                  for fe in (current or {}).get("properties", {}).get(
                      "frontendIPConfigurations", [])}
        held = held_private_ips(self.store, besides_lb=rid.path)
        kept = {p["privateIPAddress"] for p in before.values()
                if p.get("privateIPAllocationMethod") == "Dynamic"}
        out: list[dict[str, Any]] = []
        public_ips: dict[str, str] = {}
        for child, props in children(rid, "frontendIPConfigurations", items,
                                     "properties.frontendIPConfigurations"):
            field = f"frontendIPConfigurations[{child.child_name}]"
            if props.get("publicIPAddress") and props.get("subnet"):
                raise bad_request("FrontendIPConfigHasBothSubnetAndPublicIP",
                                  f"Frontend IP Configuration {child.path} must not reference "
                                  "both a Subnet and a Public IP Address.")
            if props.get("publicIPPrefix"):
                raise bad_request("NotImplemented", "publicIPPrefix frontends are not emulated.")
            if props.get("publicIPAddress"):
                pip_rid, pip = refs.require(props["publicIPAddress"], f"{field}.publicIPAddress",
                                            child.path, "publicIPAddresses")
                if pip["sku"]["name"] != "Standard":
                    raise bad_request("PublicIPAndLBSkuDoNotMatch",
                                      f"Standard sku load balancer {rid.path} cannot reference "
                                      f"Basic sku publicIP {pip['id']}.")
                others = [u for u in self.store.users(pip_rid)
                          if not u.lower().startswith(rid.path.lower() + "/")]
                key = pip["id"].lower()
                if others or key in public_ips:
                    raise bad_request("PublicIPReferencedByMultipleIPConfigs",
                                      f"Public ip address {pip['id']} is referenced by multiple "
                                      f"ipconfigs in resource {rid.path}: "
                                      f"{(others or [public_ips.get(key, '')])[0]} and "
                                      f"{child.path}.")
                public_ips[key] = child.path
                entry: dict[str, Any] = {"publicIPAddress": {"id": pip["id"]}}
            elif props.get("subnet"):
                _, subnet = refs.require(props["subnet"], f"{field}.subnet", child.path,
                                               "virtualNetworks", "subnets")
                method = str(props.get("privateIPAllocationMethod")
                             or ("Static" if props.get("privateIPAddress") else "Dynamic"))
                if method not in ("Static", "Dynamic"):
                    raise invalid(f"{field}.privateIPAllocationMethod", method,
                                  "Static or Dynamic")
                old = before.get(child.child_name.lower(), {})
                same_subnet = old.get("subnet", {}).get("id", "").lower() == subnet["id"].lower()
                if method == "Static":
                    address = check_private_ip(subnet, props.get("privateIPAddress"),
                                               f"{child.path}", held)
                elif same_subnet and old.get("privateIPAddress") in kept - held:
                    address = str(old["privateIPAddress"])
                else:
                    address = free_private_ip(subnet, held | kept)
                held.add(address)
                entry = {"subnet": {"id": subnet["id"]}, "privateIPAddress": address,
                         "privateIPAllocationMethod": method, "privateIPAddressVersion": "IPv4"}
            else:
                raise bad_request("LoadBalancerFrontendIPConfigurationMissingAddress",
                                  f"{field} needs a publicIPAddress or a subnet.")
            if isinstance(props.get("zones"), list):
                entry["zones"] = props["zones"]
            out.append(child_entry(child, entry))
        if len({"subnet" in fe["properties"] for fe in out}) > 1:
            raise bad_request("LoadBalancerWithPublicAndPrivateFrontends",
                              f"Load balancer {rid.path} cannot have both public and internal "
                              "frontend IP configurations.")
        return out

    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = super().render(obj)
        props = out["properties"]
        users: dict[str, list[dict[str, str]]] = {}
        for rule in props.get("loadBalancingRules", []):
            used = [rule["properties"]["frontendIPConfiguration"]]
            used += rule["properties"].get("backendAddressPools", [])
            used += [rule["properties"]["probe"]] if "probe" in rule["properties"] else []
            for target in used:
                users.setdefault(target["id"].lower(), []).append({"id": rule["id"]})
        for collection in ("frontendIPConfigurations", "backendAddressPools", "probes"):
            for child in props.get(collection, []):
                if child["id"].lower() in users:
                    child["properties"]["loadBalancingRules"] = users[child["id"].lower()]
        return out

