"""`observe.Discovery.instances`: one DescribeInstances serves every Service asking about the same
nodes within INSTANCES_TTL (a node change re-ensures all Services at once), concurrent askers
wait for the first call instead of making their own, and old answers expire."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from providers.aws.client import AwsClient
from providers.aws.observe import Discovery

pytestmark = pytest.mark.unit


class FakeEc2:
    """`AwsClient.pages("ec2", "DescribeInstances", Filters=...)`, slow enough for askers to
    overlap; counts calls per instance-ID set."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, ...]] = Counter()
        self._lock = threading.Lock()

    def pages(self, service: str, operation: str, **params: Any) -> list[dict[str, Any]]:
        assert (service, operation) == ("ec2", "DescribeInstances")
        ids = tuple(params["Filters"][0]["Values"])
        with self._lock:
            self.calls[ids] += 1
        time.sleep(0.05)
        return [{"Reservations": [{"Instances": [
            {"InstanceId": i, "VpcId": "vpc-1", "SubnetId": "subnet-1",
             "State": {"Name": "running"}, "Placement": {"AvailabilityZone": "us-east-1a"},
             "SecurityGroups": [{"GroupId": "sg-node"}], "PrivateIpAddress": "10.0.0.1"}
            for i in ids]}]}]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _discovery(fake: FakeEc2, clock: Clock) -> Discovery:
    return Discovery(cast(AwsClient, fake), "vpc-1", clock=clock, instances_ttl=5.0)


def test_concurrent_services_share_one_call() -> None:
    fake, clock = FakeEc2(), Clock()
    discovery = _discovery(fake, clock)
    ids = ("i-1", "i-2", "i-3")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: discovery.instances(ids), range(40)))
    assert fake.calls == Counter({ids: 1})
    assert all([i.id for i in a] == list(ids) for a in answers)
    answers[0].clear()  # a caller's list is its own
    assert len(discovery.instances(ids)) == 3


def test_answers_expire_and_node_sets_are_separate() -> None:
    fake, clock = FakeEc2(), Clock()
    discovery = _discovery(fake, clock)
    discovery.instances(("i-1", "i-2"))
    clock.now += 4.9
    discovery.instances(("i-1", "i-2"))
    discovery.instances(("i-1", "i-2", "i-3"))  # a node joined: another set, another call
    assert fake.calls == Counter({("i-1", "i-2"): 1, ("i-1", "i-2", "i-3"): 1})
    clock.now += 0.1
    discovery.instances(("i-1", "i-2"))
    assert fake.calls[("i-1", "i-2")] == 2
    clock.now += 10
    discovery.instances(("i-4",))  # expired sets are dropped, not kept forever
    assert list(discovery._instances) == [("i-4",)]
    discovery.forget()
    discovery.instances(("i-4",))
    assert fake.calls[("i-4",)] == 2
