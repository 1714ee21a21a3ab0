"""The AWS side of `lbctl demo --provider aws`: what the cluster owns, as the AWS CLI shows it.

`AwsView.show` prints the commands a user would type (`aws elbv2 describe-load-balancers`, ...)
and their answers as tables: the NLB and its tags, target groups (port = the Service's
nodePort, health check), registered targets (the world's instances, by node), listeners, and the
security group rules lbctl recognises by their `lbctl:<balancer>:<purpose>` description.
The NLB's security groups are listed with it: its own frontend group (the Service's source
ranges on the listener ports) and the cluster's backend group, which the node rules admit.
`leftovers` counts, by kind, what is still tagged `lbctl.io/cluster=<cluster>` (or is one of
its rules): all zeros after the Service is deleted. Clients are boto3's, handed in.
"""

from __future__ import annotations

from typing import Any

import click

from providers.aws.names import RULE_PREFIX, TAG_CLUSTER

from .story import print_table, say


def _pages(client: Any, operation: str, key: str, **kw: Any) -> list[dict[str, Any]]:
    return [item for page in client.get_paginator(operation).paginate(**kw)
            for item in page.get(key, [])]


class AwsView:
    """What the demo's cluster owns in AWS, shown as the AWS CLI would list it."""

    def __init__(self, ec2: Any, elbv2: Any, cluster: str, vpc_id: str) -> None:
        self.ec2, self.elbv2, self.cluster, self.vpc_id = ec2, elbv2, cluster, vpc_id

    def _tags(self, arns: list[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for start in range(0, len(arns), 20):
            for d in self.elbv2.describe_tags(ResourceArns=arns[start:start + 20])[
                    "TagDescriptions"]:
                out[d["ResourceArn"]] = {t["Key"]: t.get("Value", "") for t in d.get("Tags", [])}
        return out

    def _ours(self, tags: dict[str, str] | list[dict[str, str]] | None) -> bool:
        if isinstance(tags, list):
            tags = {t["Key"]: t.get("Value", "") for t in tags}
        return (tags or {}).get(TAG_CLUSTER) == self.cluster

    def _elbv2(self, operation: str, key: str, arn_key: str) -> list[dict[str, Any]]:
        """Load balancers or target groups tagged for the cluster, with their `Tags`."""
        items = _pages(self.elbv2, operation, key)
        tags = self._tags([i[arn_key] for i in items])
        return [{**i, "Tags": tags[i[arn_key]]} for i in items if self._ours(tags.get(i[arn_key]))]

    def _rules(self) -> list[dict[str, str]]:
        """Ingress rules in the cluster's VPC described `lbctl:...`, flattened from
        DescribeSecurityGroups (DescribeSecurityGroupRules would do, but moto leaves out the
        description of a rule whose source is another group: the node rules)."""
        rows: list[dict[str, str]] = []
        for g in _pages(self.ec2, "describe_security_groups", "SecurityGroups",
                        Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}]):
            for perm in g.get("IpPermissions", []):
                ports = str(perm.get("FromPort", "all"))
                if perm.get("ToPort") != perm.get("FromPort"):
                    ports += f"-{perm.get('ToPort')}"
                sources = [(r["CidrIp"], r) for r in perm.get("IpRanges", [])]
                sources += [(r["CidrIpv6"], r) for r in perm.get("Ipv6Ranges", [])]
                sources += [(r["GroupId"], r) for r in perm.get("UserIdGroupPairs", [])]
                rows += [{"GroupId": g["GroupId"], "Protocol": perm["IpProtocol"],
                          "Ports": ports, "From": source,
                          "Description": str(r.get("Description", ""))}
                         for source, r in sources
                         if str(r.get("Description", "")).startswith(RULE_PREFIX)]
        return rows

    def show(self, node_names: dict[str, str]) -> None:
        for lb in self._elbv2("describe_load_balancers", "LoadBalancers", "LoadBalancerArn"):
            self._show_balancer(lb, node_names)
        rules = sorted(self._rules(), key=lambda r: (r["Description"], r["From"]))
        groups = " ".join(sorted({r["GroupId"] for r in rules})) or "<none>"
        say(f"aws ec2 describe-security-groups --group-ids {groups} "
            "--query \"SecurityGroups[].IpPermissions[]\"   # lbctl's rules")
        rows = [("GROUP", "PROTOCOL", "PORTS", "FROM", "DESCRIPTION")]
        rows += [(r["GroupId"], r["Protocol"], r["Ports"], r["From"], r["Description"])
                 for r in rules]
        print_table(rows, "  ")

    def _show_balancer(self, lb: dict[str, Any], node_names: dict[str, str]) -> None:
        arn = lb["LoadBalancerArn"]
        say(f"aws elbv2 describe-load-balancers --names {lb['LoadBalancerName']}")
        zones = ", ".join(f"{z['ZoneName']} {z['SubnetId']}" for z in lb["AvailabilityZones"])
        print_table([("LoadBalancerArn", arn), ("LoadBalancerName", lb["LoadBalancerName"]),
                     ("DNSName", lb["DNSName"]), ("Type", lb["Type"]),
                     ("Scheme", lb["Scheme"]), ("State", lb["State"]["Code"]),
                     ("VpcId", lb["VpcId"]), ("AvailabilityZones", zones),
                     ("SecurityGroups", " ".join(lb.get("SecurityGroups", [])) or "-")], "  ")
        say("aws elbv2 describe-tags --resource-arns $NLB_ARN   # the LoadBalancerArn above")
        print_table([("KEY", "VALUE"), *sorted(lb["Tags"].items())], "  ")
        say("aws elbv2 describe-target-groups --load-balancer-arn $NLB_ARN")
        groups = _pages(self.elbv2, "describe_target_groups", "TargetGroups",
                        LoadBalancerArn=arn)
        print_table([("NAME", "PROTOCOL", "PORT", "TARGET-TYPE", "HEALTH-CHECK"), *[
            (g["TargetGroupName"], g["Protocol"], str(g["Port"]), g["TargetType"],
             f"{g['HealthCheckProtocol']} {g['HealthCheckPort']}"
             f"{g.get('HealthCheckPath') or ''} every {g['HealthCheckIntervalSeconds']} s, "
             f"{g['HealthyThresholdCount']} up / {g['UnhealthyThresholdCount']} down")
            for g in groups]], "  ")
        for g in groups:
            say(f"aws elbv2 describe-target-health --target-group-arn $TG_ARN   "
                f"# {g['TargetGroupName']}")
            health = self.elbv2.describe_target_health(TargetGroupArn=g["TargetGroupArn"])
            print_table([("TARGET", "PORT", "STATE", "NODE"), *[
                (t["Target"]["Id"], str(t["Target"].get("Port", "")),
                 t["TargetHealth"]["State"], node_names.get(t["Target"]["Id"], "?"))
                for t in health["TargetHealthDescriptions"]]], "  ")
        click.echo("  (moto calls every target healthy; nothing listens on these instances)")
        say("aws elbv2 describe-listeners --load-balancer-arn $NLB_ARN")
        names = {g["TargetGroupArn"]: g["TargetGroupName"] for g in groups}
        print_table([("PROTOCOL", "PORT", "DEFAULT-ACTION"), *[
            (li["Protocol"], str(li["Port"]), ", ".join(
                f"{a['Type']} {names.get(a.get('TargetGroupArn', ''), '?')}"
                for a in li["DefaultActions"]))
            for li in _pages(self.elbv2, "describe_listeners", "Listeners",
                             LoadBalancerArn=arn)]], "  ")

    def leftovers(self) -> dict[str, int]:
        """What is still tagged for the cluster (or is one of its rules), by kind."""
        balancers = self._elbv2("describe_load_balancers", "LoadBalancers", "LoadBalancerArn")
        owner = {li["ListenerArn"]: lb["LoadBalancerArn"]
                 for lb in _pages(self.elbv2, "describe_load_balancers", "LoadBalancers")
                 if lb.get("VpcId") == self.vpc_id
                 for li in _pages(self.elbv2, "describe_listeners", "Listeners",
                                  LoadBalancerArn=lb["LoadBalancerArn"])}
        listener_tags = self._tags(list(owner))
        owned = {lb["LoadBalancerArn"] for lb in balancers}
        return {
            "load balancers": len(balancers),
            "target groups": len(self._elbv2("describe_target_groups", "TargetGroups",
                                             "TargetGroupArn")),
            "listeners": sum(1 for li, lb in owner.items()
                             if lb in owned or self._ours(listener_tags.get(li))),
            "security group rules": len(self._rules()),
            "security groups": sum(1 for g in _pages(self.ec2, "describe_security_groups",
                                                     "SecurityGroups")
                                   if self._ours(g.get("Tags"))),
            "Elastic IPs": sum(1 for a in self.ec2.describe_addresses()["Addresses"]
                               if self._ours(a.get("Tags"))),
        }
