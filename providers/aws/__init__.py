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
- `client`: boto3 clients, per-family token buckets, tenacity retries, error mapping,
  call counting.
- `observe`: discovery (instances, subnets, security groups) and what exists, by ownership.
- `deploy`: the diff and the crash-safe order of writes (and `plan`'s words).
- `ingress`: node security group rules (batched authorize/revoke, tolerant re-runs).
- `provider`: `AwsProvider` (the Provider protocol, per-balancer locks, delete by tags).
"""

from __future__ import annotations

from .provider import CAPABILITIES, AwsProvider, create
from .settings import validate_settings

__all__ = ["CAPABILITIES", "AwsProvider", "create", "validate_settings"]
