"""The IAM policy (`providers.aws.iam`) lists exactly the AWS operations the provider calls:
found by scanning its source for calls through `AwsClient` (`client.elbv2("Op"`,
`client.pages("ec2", "Op"`, `..., self.client.elbv2, "Op"`), each checked to be a real
operation of that service."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest

from providers.aws import iam
from providers.aws.client import family

pytestmark = pytest.mark.unit

SOURCE = Path(iam.__file__).parent
CALL = re.compile(r'(?:\.(elbv2|ec2|tagging)\(|\.(elbv2|ec2|tagging),'
                  r'|pages\("(elbv2|ec2|tagging)",)"([A-Z][A-Za-z]+)"')
BOTOCORE = {"elbv2": "elbv2", "ec2": "ec2", "tagging": "resourcegroupstaggingapi"}


def called() -> set[tuple[str, str]]:
    """(client, operation) of every call in the provider's source."""
    out = set()
    for path in SOURCE.glob("*.py"):
        text = re.sub(r"\s+", "", path.read_text())
        for match in CALL.finditer(text):
            service = match.group(1) or match.group(2) or match.group(3)
            out.add((service, match.group(4)))
    return out


def test_the_policy_lists_exactly_the_operations_called() -> None:
    calls = called()
    assert ("tagging", "GetResources") in calls and ("ec2", "CreateSecurityGroup") in calls
    session = botocore.session.get_session()
    for service, operation in calls:
        model = session.get_service_model(BOTOCORE[service])
        assert operation in model.operation_names, (service, operation)
    assert {f"{iam.SERVICE_PREFIX[s]}:{op}" for s, op in calls} == iam.actions()


def test_the_policy_prints_as_iam_json() -> None:
    out = subprocess.run([sys.executable, "-m", "providers.aws.iam"], capture_output=True,
                         text=True, check=True, cwd=SOURCE.parents[1])
    document = json.loads(out.stdout)
    assert document == iam.policy()
    assert document["Version"] == "2012-10-17"
    assert {a for s in document["Statement"] for a in s["Action"]} == iam.actions()
    assert all(s["Effect"] == "Allow" for s in document["Statement"])


def test_every_call_draws_from_its_services_bucket() -> None:
    """EC2 writes from EC2's bucket, ELB writes from ELB's, reads and the tagging API from
    theirs: AWS throttles each service apart, so one must not starve the other."""
    for service, operation in called():
        expected = ("tagging" if service == "tagging" else
                    "describe" if operation.startswith(("Describe", "Get", "List")) else
                    "register" if operation.startswith(("Register", "Deregister")) else
                    "ec2Modify" if service == "ec2" else "modify")
        assert family(operation) == expected, (service, operation)
