"""The `aws` provider: one Network Load Balancer per LoadBalancer Service (boto3, optional
extra `lbctl[aws]`, imported only when a client is built).

Public interface:

- `create(settings, cluster_name, cluster) -> AwsProvider`: the registry's factory
  (`provider: aws`); `settings` is the config's `aws:` section.
- `validate_settings(raw) -> problems`: the same parser, for `lbctl config validate`.
- `AwsProvider`, `CAPABILITIES`.

Module map (pure modules marked *):
- `settings`*: the `aws:` config section (region, endpoint, VPC, rate limits, tags).
- `annotations`*: the Service annotations -> `AwsOptions`.
- `names`*: deterministic names within AWS limits, ownership tags, rule descriptions.
- `model`*: Discovered / Desired* / Observed* data, no SDK types.
- `desired`*: spec + options + settings + discovered -> the desired NLB (golden-tested).
- `firewall`*: the NLB's security groups (per-NLB frontend + the cluster's backend, the
  annotation's, or none for a legacy NLB) and the ingress rules lbctl owns.
- `client`: boto3 clients (ELBv2, EC2, Resource Groups Tagging), per-family token buckets,
  tenacity retries, error mapping, call counting.
- `tagging`: what the cluster owns via GetResources (O(owned objects), not O(account)).
- `observe`: discovery (instances, subnets, security groups) and what exists, by ownership.
- `groups`: the security groups lbctl creates (crash-safe create/adopt, delete with
  RetryAfter while AWS still holds them) and the backend group's gate.
- `deploy`, `deploy_groups`: the diff and the crash-safe order of writes (and `plan`'s words).
- `ingress`: security group rules (batched authorize/revoke, tolerant re-runs).
- `cleanup`: delete, release and list_owned, by tags.
- `provider`: `AwsProvider` (the Provider protocol, per-balancer locks).
- `iam`: the IAM policy the controller's role needs (`python -m providers.aws.iam`).
"""

from __future__ import annotations

from .provider import CAPABILITIES, AwsProvider, create
from .settings import validate_settings

__all__ = ["CAPABILITIES", "AwsProvider", "create", "validate_settings"]
