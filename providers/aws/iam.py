"""The IAM policy the controller's role needs for the `aws` provider (IRSA or EKS Pod Identity;
`deploy/helm/lbctl/values-aws.yaml` points here). Print it with:

    python -m providers.aws.iam > lbctl-aws-policy.json

Why a module and not a document: a unit test scans the provider's code for every AWS operation
it calls and requires the policy to list exactly those, so a new call (say SetSecurityGroups)
cannot ship without its permission, and no permission outlives the call that needed it.

Reads are allowed on every resource (AWS does not scope most Describe* calls). Writes are
allowed on every resource too, for a reason: lbctl recognises its objects by tags it writes at
creation, and the ELBv2 and EC2 tag conditions (`aws:ResourceTag/lbctl.io/cluster`) differ per
call; an account that wants them can narrow the write statements by cluster tag, as the AWS Load
Balancer Controller's reference policy does. `CreateTags` and `AddTags` are needed because
lbctl tags objects in the create call itself (TagSpecifications / Tags), and fixes tags later.
`tag:GetResources` is the Resource Groups Tagging API: how delete, orphan collection and the
detached-group scan find what the cluster owns.
"""

from __future__ import annotations

import json
from typing import Any

READ: dict[str, tuple[str, ...]] = {
    "elasticloadbalancing": (
        "DescribeListeners", "DescribeLoadBalancerAttributes", "DescribeLoadBalancers",
        "DescribeTags", "DescribeTargetGroupAttributes", "DescribeTargetGroups",
        "DescribeTargetHealth"),
    "ec2": ("DescribeInstances", "DescribeSecurityGroups", "DescribeSubnets", "DescribeVpcs"),
    "tag": ("GetResources",),
}
WRITE: dict[str, tuple[str, ...]] = {
    "elasticloadbalancing": (
        "AddTags", "CreateListener", "CreateLoadBalancer", "CreateTargetGroup",
        "DeleteListener", "DeleteLoadBalancer", "DeleteTargetGroup", "DeregisterTargets",
        "ModifyListener", "ModifyLoadBalancerAttributes", "ModifyTargetGroup",
        "ModifyTargetGroupAttributes", "RegisterTargets", "RemoveTags", "SetIpAddressType",
        "SetSecurityGroups", "SetSubnets"),
    "ec2": ("AuthorizeSecurityGroupIngress", "CreateSecurityGroup", "CreateTags",
            "DeleteSecurityGroup", "DeleteTags", "RevokeSecurityGroupIngress",
            "UpdateSecurityGroupRuleDescriptionsIngress"),
}
SERVICE_PREFIX = {"elbv2": "elasticloadbalancing", "ec2": "ec2", "tagging": "tag"}
"""The client names in `client.AwsClient` -> IAM action prefixes."""


def actions() -> set[str]:
    """Every `prefix:Operation` the policy allows."""
    return {f"{prefix}:{op}" for table in (READ, WRITE) for prefix, ops in table.items()
            for op in ops}


def policy() -> dict[str, Any]:
    """The policy document (IAM JSON)."""
    def statement(sid: str, table: dict[str, tuple[str, ...]]) -> dict[str, Any]:
        return {"Sid": sid, "Effect": "Allow", "Resource": "*",
                "Action": sorted(f"{p}:{op}" for p, ops in table.items() for op in ops)}

    return {"Version": "2012-10-17",
            "Statement": [statement("LbctlRead", READ), statement("LbctlWrite", WRITE)]}


if __name__ == "__main__":
    print(json.dumps(policy(), indent=2))
