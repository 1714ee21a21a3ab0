"""The security groups lbctl creates: a frontend group per NLB and the cluster's backend group.

Why this shape, for crash safety: a group's name is unique in its VPC, so CreateSecurityGroup
is its own idempotency check. A crash after it leaves a group that the next run finds by name
(DescribeSecurityGroups on group-name + vpc-id) or meets as InvalidGroup.Duplicate and adopts,
after its tags (written in the same call) prove it ours; a group with our name but not our
tags is someone else's (NotOwnedError), never used.

Deleting: AWS keeps a deleted NLB's network interfaces, and with them its security groups, for
a while, answering DependencyViolation; `delete_group` turns that into RetryAfter, so the
controller polls instead of failing or leaking. The backend group is shared by every NLB of the
cluster: `BackendGate` keeps an in-process delete of it (the last NLB gone) from racing an
ensure that is about to attach it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from providers.errors import NotOwnedError, RetryAfter

from . import names
from .client import ApiError, AwsClient
from .model import DesiredSecurityGroup, ObservedSecurityGroup

log = logging.getLogger(__name__)

IN_USE_RETRY_SECONDS = 15.0
"""How soon to try a delete again that AWS refused because the group is still in use."""


def find_by_names(client: AwsClient, vpc_id: str, group_names: Iterable[str],
                  ) -> list[dict[str, Any]]:
    """The groups of `vpc_id` called one of `group_names` (raw, with their rules)."""
    wanted = sorted(set(group_names))
    if not wanted or not vpc_id:
        return []
    return [g for page in client.pages("ec2", "DescribeSecurityGroups", Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": wanted}])
        for g in page.get("SecurityGroups", [])]


def observed(raw_groups: Iterable[dict[str, Any]],
             group_names: Iterable[str]) -> tuple[ObservedSecurityGroup, ...]:
    """The raw groups called one of `group_names`, once each, whoever owns them."""
    wanted = set(group_names)
    seen: dict[str, ObservedSecurityGroup] = {}
    for g in raw_groups:
        if g.get("GroupName") in wanted:
            seen[g["GroupId"]] = ObservedSecurityGroup(
                g["GroupId"], g["GroupName"], g.get("VpcId", ""), names.tag_dict(g.get("Tags")))
    return tuple(sorted(seen.values(), key=lambda o: (o.name, o.id)))


def owns(group: ObservedSecurityGroup, role: str, cluster: str, balancer: str) -> bool:
    if role == "backend":
        return names.is_backend(group.tags, cluster)
    return names.is_owned(group.tags, cluster, balancer)


def create_group(client: AwsClient, want: DesiredSecurityGroup, cluster: str,
                 balancer: str) -> ObservedSecurityGroup:
    """CreateSecurityGroup with its tags; a group of that name already there is adopted when
    its tags say it is ours (a crash after the create), else NotOwnedError."""
    try:
        group_id = str(client.ec2(
            "CreateSecurityGroup", GroupName=want.name, Description=want.description,
            VpcId=want.vpc_id, TagSpecifications=[{"ResourceType": "security-group",
                                                   "Tags": names.tag_list(want.tags)}],
        )["GroupId"])
        return ObservedSecurityGroup(group_id, want.name, want.vpc_id, dict(want.tags))
    except ApiError as exc:
        if exc.code != "InvalidGroup.Duplicate":
            raise
    for found in observed(find_by_names(client, want.vpc_id, [want.name]), [want.name]):
        if not owns(found, want.role, cluster, balancer):
            raise NotOwnedError("security group", want.name)
        log.info("adopting security group %s (%s) left by an earlier run", want.name, found.id)
        return found
    raise ApiError("CreateSecurityGroup", "InvalidGroup.Duplicate", want.name)


def delete_group(client: AwsClient, group_id: str, what: str) -> None:
    """DeleteSecurityGroup; gone is success; still in use -> RetryAfter."""
    try:
        client.ec2("DeleteSecurityGroup", GroupId=group_id)
    except ApiError as exc:
        if exc.not_found:
            return
        if exc.code == "DependencyViolation":
            raise RetryAfter(IN_USE_RETRY_SECONDS,
                             f"security group {group_id} ({what}) is still in use: AWS releases "
                             "a deleted NLB's network interfaces minutes later (or another "
                             f"group's rule references it): {exc.message}") from exc
        raise


class BackendGate:
    """A readers-writer gate for the cluster's backend group: ensures `use()` it (many at
    once), deleting it takes it `alone()` (waits for them; new ones wait behind it)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._deleting = False

    @contextmanager
    def use(self) -> Iterator[None]:
        with self._cond:
            while self._deleting:
                self._cond.wait()
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            while self._deleting:
                self._cond.wait()
            self._deleting = True
            while self._users:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._deleting = False
                self._cond.notify_all()
