"""The AWS provider's target counts, from the DescribeTargetHealth every ensure reads: which
states count as healthy (only `healthy`: `initial`, `unused` and `unavailable` targets take no
traffic), which do not count at all (`draining`: on its way out), and no read, no count."""

from __future__ import annotations

from typing import Any

import pytest

from providers.aws.observe import target_group
from providers.spec import TargetHealth

pytestmark = pytest.mark.unit
RAW = {"TargetGroupArn": "arn:tg/web", "TargetGroupName": "k8s-web-80", "Protocol": "TCP",
       "Port": 30080}


class Elbv2:
    """Answers DescribeTargetHealth with the given states, and counts the calls."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.calls: list[str] = []

    def elbv2(self, operation: str, **params: Any) -> dict[str, Any]:
        self.calls.append(operation)
        if operation == "DescribeTargetHealth":
            return {"TargetHealthDescriptions": [
                {"Target": {"Id": t, "Port": 30080}, "TargetHealth": {"State": s}}
                for t, s in self.states.items()]}
        return {"Attributes": []}


@pytest.mark.parametrize(("states", "expected"), [
    ({"i-1": "healthy", "i-2": "healthy", "i-3": "unhealthy"}, TargetHealth(2, 3)),
    ({"i-1": "healthy", "i-2": "initial", "i-3": "unused", "i-4": "unavailable"},
     TargetHealth(1, 4)),
    ({"i-1": "healthy", "i-2": "draining"}, TargetHealth(1, 1)),
    ({}, TargetHealth(0, 0)),
])
def test_counts_from_the_states(states: dict[str, str], expected: TargetHealth) -> None:
    client = Elbv2(states)
    group = target_group(client, RAW, {})  # type: ignore[arg-type]
    assert group.health == expected
    assert client.calls == ["DescribeTargetHealth", "DescribeTargetGroupAttributes"]


def test_without_the_details_read_nothing_is_known() -> None:
    client = Elbv2({"i-1": "healthy"})
    assert target_group(client, RAW, {}, details=False).health is None  # type: ignore[arg-type]
    assert client.calls == []
