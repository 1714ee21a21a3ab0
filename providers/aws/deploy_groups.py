"""The security group half of a deploy: the groups lbctl owns, the NLB's groups and the
ingress rules, as steps of `deploy.Deployer` (which runs them in its crash-safe order).

Why a separate step class: the desired model names the groups lbctl creates (they have no ID
before they exist, and `plan` must describe them without creating them), so every step here
first resolves names to IDs from what was observed or just created. The order matters for
crash safety: the groups exist before the NLB that needs them at creation (the only moment AWS
accepts them), rules are written after the NLB, and a group no longer wanted (the Service moved
to the security-groups annotation) is deleted last, after the NLB let go of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from providers.errors import NotOwnedError, RetryAfter

from . import names
from .client import AwsClient
from .groups import create_group, delete_group, owns
from .ingress import authorize, by_group, describe, resolve, revoke, rules_text
from .model import (
    SG_LEGACY,
    DesiredNlb,
    DesiredSecurityGroup,
    Observed,
    ObservedSecurityGroup,
)

log = logging.getLogger(__name__)


class GroupSteps:
    """Mixed into `Deployer`: needs its client, desired/observed models and `_write`."""

    client: AwsClient
    d: DesiredNlb
    o: Observed
    cluster: str
    balancer: str
    group_ids: dict[str, str]
    """Managed group name -> ID, from what was observed or created in this run."""

    def _write(self, words: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _found(self, want: DesiredSecurityGroup) -> ObservedSecurityGroup | None:
        return next((g for g in self.o.security_groups
                     if g.name == want.name and g.vpc_id == want.vpc_id), None)

    def managed_groups(self) -> None:
        """Create the frontend and backend groups that do not exist yet (adopting one a crash
        left), check ownership of those that do, and add tags they lack."""
        for want in self.d.security_groups:
            have = self._found(want)
            if have is None:
                made = self._write(f"create security group {want.name} ({want.role}) in "
                                   f"{want.vpc_id}", create_group, self.client, want,
                                   self.cluster, self.balancer)
                if made is not None:
                    self.group_ids[want.name] = made.id
                continue
            if not owns(have, want.role, self.cluster, self.balancer):
                raise NotOwnedError("security group", want.name)
            self.group_ids[want.name] = have.id
            missing = [(k, v) for k, v in want.tags if have.tags.get(k) != v]
            if missing:
                self._write(f"tag security group {want.name}: "
                            f"{', '.join(k for k, _ in missing)}", self.client.ec2, "CreateTags",
                            Resources=[have.id], Tags=names.tag_list(missing))

    def attached(self) -> list[str]:
        """The NLB's groups as IDs (a name stays a name only in a dry run)."""
        return [self.group_ids.get(g, g) for g in self.d.load_balancer.security_groups]

    def nlb_groups(self, lb_arn: str, have: tuple[str, ...]) -> None:
        """SetSecurityGroups when the NLB's groups differ; never on an NLB created without
        any (AWS refuses: that is the legacy path, whose desired groups are empty)."""
        want = self.attached()
        if self.d.security_group_mode == SG_LEGACY or not have or not want:
            return
        if set(want) != set(have):
            self._write(f"set security groups of {self.d.load_balancer.name}: "
                        f"{', '.join(sorted(have))} -> {', '.join(want)}", self.client.elbv2,
                        "SetSecurityGroups", LoadBalancerArn=lb_arn, SecurityGroups=want)

    def _doomed(self) -> list[ObservedSecurityGroup]:
        """This balancer's frontend group when it is no longer wanted."""
        wanted = {g.name for g in self.d.security_groups}
        frontend = names.frontend_group_name(self.balancer)
        return [g for g in self.o.security_groups if g.name == frontend and g.name not in wanted
                and owns(g, "frontend", self.cluster, self.balancer)]

    def rules(self) -> None:
        """Authorize the missing rules, revoke ours no longer wanted (except on a group about
        to be deleted), relabel ours whose description changed."""
        doomed = {g.id for g in self._doomed()}
        want = {r.key: r for r in (resolve(r, self.group_ids) for r in self.d.sg_rules)}
        have = {r.key: r for r in self.o.sg_rules}
        add = [r for k, r in want.items() if k not in have]
        drop = [r for k, r in have.items() if k not in want and r.group_id not in doomed]
        relabel = [r for k, r in want.items()
                   if k in have and have[k].description != r.description]
        for group, rules in by_group(add):
            self._write(f"allow {rules_text(rules)} on {group}", authorize, self.client, group,
                        rules)
        for group, rules in by_group(drop):
            self._write(f"revoke {rules_text(rules)} on {group}", revoke, self.client, group,
                        rules)
        for group, rules in by_group(relabel):
            self._write(f"relabel {rules_text(rules)} on {group}", self.client.ec2,
                        "UpdateSecurityGroupRuleDescriptionsIngress", GroupId=group,
                        IpPermissions=describe(rules))

    def old_groups(self) -> None:
        """Delete the frontend group a Service no longer uses; while AWS still holds it, leave
        it for the next ensure (the Service's own delete removes it in any case)."""
        for group in self._doomed():
            self._write(f"delete security group {group.name} (no longer used)",
                        self._drop_group, group)

    def _drop_group(self, group: ObservedSecurityGroup) -> None:
        try:
            delete_group(self.client, group.id, f"former frontend of {self.balancer}")
        except RetryAfter as exc:
            log.info("%s; trying again on the next ensure", exc)
