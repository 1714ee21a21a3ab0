"""The `aws:` config section: defaults, every key good and bad, environment fallbacks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from providers.aws.settings import AwsSettings, parse_settings, validate_settings

pytestmark = pytest.mark.unit

DEFAULT = AwsSettings()
CREDENTIALS = ("unknown key: credentials come from the environment, a mounted Secret or "
               "workload identity, never from config")
REGION = "must be an AWS region such as 'us-east-1' or 'us-gov-west-1', not "
ENDPOINT = "must be an http:// or https:// URL such as 'http://localstack:4566', not "
VPC = "must be a VPC ID such as 'vpc-0a1b2c3d' ('vpc-' and hexadecimal digits), not "
RATE = "must be a number of requests per second above 0 and at most 1000, not "
RESERVED = "is reserved: lbctl writes its ownership tags under lbctl.io/ and kubernetes.io/cluster/"


def test_defaults() -> None:
    assert DEFAULT.region == "us-east-1" and DEFAULT.endpoint_url is None
    assert DEFAULT.vpc_id is None and DEFAULT.extra_tags == ()
    assert DEFAULT.rate_limits == {"describe": 20.0, "modify": 5.0, "register": 4.0,
                                   "tagging": 10.0, "ec2Modify": 5.0}
    assert AwsSettings().rate_limits is not DEFAULT.rate_limits  # no shared mutable default


@pytest.mark.parametrize("raw", [None, {}])
def test_empty_is_defaults(raw: Any) -> None:
    assert parse_settings(raw, env={}) == (DEFAULT, [])
    assert validate_settings(raw) == []


GOOD: list[tuple[dict[str, Any], AwsSettings]] = [
    ({"region": "eu-west-1"}, replace(DEFAULT, region="eu-west-1")),
    ({"region": "us-gov-west-1"}, replace(DEFAULT, region="us-gov-west-1")),
    ({"region": "cn-north-1"}, replace(DEFAULT, region="cn-north-1")),
    ({"region": "ap-southeast-7"}, replace(DEFAULT, region="ap-southeast-7")),
    ({"region": "us-iso-east-1"}, replace(DEFAULT, region="us-iso-east-1")),
    ({"region": "us-isob-east-1"}, replace(DEFAULT, region="us-isob-east-1")),
    ({"region": None}, DEFAULT),
    ({"endpointURL": "http://localstack:4566"},
     replace(DEFAULT, endpoint_url="http://localstack:4566")),
    ({"endpointURL": "https://elasticloadbalancing.eu-west-1.amazonaws.com"},
     replace(DEFAULT, endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com")),
    ({"endpointURL": ""}, DEFAULT),  # the design contract's default means unset
    ({"vpcID": "vpc-0a1b2c3d"}, replace(DEFAULT, vpc_id="vpc-0a1b2c3d")),
    ({"vpcID": "vpc-0123456789abcdef0"}, replace(DEFAULT, vpc_id="vpc-0123456789abcdef0")),
    ({"rateLimits": {"describe": 50}},
     replace(DEFAULT, rate_limits={"describe": 50.0, "modify": 5.0, "register": 4.0,
                                   "tagging": 10.0, "ec2Modify": 5.0})),
    ({"rateLimits": {"describe": 1000, "modify": 0.5, "register": 1, "tagging": 2,
                     "ec2Modify": 3}},
     replace(DEFAULT, rate_limits={"describe": 1000.0, "modify": 0.5, "register": 1.0,
                                   "tagging": 2.0, "ec2Modify": 3.0})),
    ({"rateLimits": {}}, DEFAULT),
    ({"tags": {"team": "web", "Name": "my lb", "cost-center": "", "k8s.io/x": "a=b@c+d"}},
     replace(DEFAULT, extra_tags=(("Name", "my lb"), ("cost-center", ""), ("k8s.io/x", "a=b@c+d"),
                                  ("team", "web")))),
    ({"tags": {"kubernetes.io/service-name": "x", "équipe": "données"}},
     replace(DEFAULT, extra_tags=(("kubernetes.io/service-name", "x"), ("équipe", "données")))),
    ({"tags": {}}, DEFAULT),
]


@pytest.mark.parametrize(("raw", "expected"), GOOD)
def test_good_settings(raw: dict[str, Any], expected: AwsSettings) -> None:
    assert parse_settings(raw, env={}) == (expected, [])
    assert validate_settings(raw) == []


BAD: list[tuple[Any, list[tuple[str, str]], AwsSettings]] = [
    ([], [("aws", "must be a mapping (region, endpointURL, vpcID, rateLimits, tags), not []")],
     DEFAULT),
    ("us-east-1", [("aws", "must be a mapping (region, endpointURL, vpcID, rateLimits, tags), "
                           "not 'us-east-1'")], DEFAULT),
    ({"regoin": "eu-west-1"}, [("aws.regoin", "unknown key")], DEFAULT),
    ({"accessKeyID": "AKIA..."}, [("aws.accessKeyID", CREDENTIALS)], DEFAULT),
    ({"secretAccessKey": "x"}, [("aws.secretAccessKey", CREDENTIALS)], DEFAULT),
    ({"sessionToken": "x"}, [("aws.sessionToken", CREDENTIALS)], DEFAULT),
    ({"aws_access_key_id": "x"}, [("aws.aws_access_key_id", CREDENTIALS)], DEFAULT),
    ({"credentials": {"x": "y"}}, [("aws.credentials", CREDENTIALS)], DEFAULT),
    ({"region": "mars-1"}, [("aws.region", REGION + "'mars-1'")], DEFAULT),
    ({"region": "US-EAST-1"}, [("aws.region", REGION + "'US-EAST-1'")], DEFAULT),
    ({"region": "us-east-1a"}, [("aws.region", REGION + "'us-east-1a'")], DEFAULT),
    ({"region": 1}, [("aws.region", REGION + "1")], DEFAULT),
    ({"endpointURL": "localstack:4566"},
     [("aws.endpointURL", ENDPOINT + "'localstack:4566'")], DEFAULT),
    ({"endpointURL": "ftp://x"}, [("aws.endpointURL", ENDPOINT + "'ftp://x'")], DEFAULT),
    ({"endpointURL": "http://"}, [("aws.endpointURL", ENDPOINT + "'http://'")], DEFAULT),
    ({"endpointURL": "http://h:99999"}, [("aws.endpointURL", ENDPOINT + "'http://h:99999'")],
     DEFAULT),
    ({"endpointURL": 4566}, [("aws.endpointURL", ENDPOINT + "4566")], DEFAULT),
    ({"vpcID": "vpc-xyz"}, [("aws.vpcID", VPC + "'vpc-xyz'")], DEFAULT),
    ({"vpcID": "0a1b2c3d"}, [("aws.vpcID", VPC + "'0a1b2c3d'")], DEFAULT),
    ({"rateLimits": 5},
     [("aws.rateLimits", "must be a mapping of describe, modify, register, tagging, ec2Modify to "
                         "requests per second, not 5")], DEFAULT),
    ({"rateLimits": {"describe": 0, "modify": 1001, "register": True, "delete": 1}},
     [("aws.rateLimits.describe", RATE + "0"), ("aws.rateLimits.modify", RATE + "1001"),
      ("aws.rateLimits.register", RATE + "True"),
      ("aws.rateLimits.delete", "unknown key (allowed: describe, modify, register, tagging, "
                                "ec2Modify)")],
     DEFAULT),
    ({"rateLimits": {"describe": -1, "modify": "5", "register": 2}},
     [("aws.rateLimits.describe", RATE + "-1"), ("aws.rateLimits.modify", RATE + "'5'")],
     replace(DEFAULT, rate_limits={"describe": 20.0, "modify": 5.0, "register": 2.0,
                                   "tagging": 10.0, "ec2Modify": 5.0})),
    ({"tags": ["a=b"]}, [("aws.tags", "must be a mapping of tag keys to values, not ['a=b']")],
     DEFAULT),
    ({"tags": {"lbctl.io/owner": "me", "ok": "yes"}},
     [("aws.tags.lbctl.io/owner", f'tag key "lbctl.io/owner" {RESERVED}')],
     replace(DEFAULT, extra_tags=(("ok", "yes"),))),
    ({"tags": {"kubernetes.io/cluster/prod": "owned"}},
     [("aws.tags.kubernetes.io/cluster/prod", f'tag key "kubernetes.io/cluster/prod" {RESERVED}')],
     DEFAULT),
    ({"tags": {"aws:cloudformation:stack": "x"}},
     [("aws.tags.aws:cloudformation:stack", 'tag key "aws:cloudformation:stack" is reserved: '
                                            'AWS keeps the "aws:" prefix for its own tags')],
     DEFAULT),
    ({"tags": {"Aws:x": "y"}},
     [("aws.tags.Aws:x", 'tag key "Aws:x" is reserved: AWS keeps the "aws:" prefix for its '
                         "own tags")], DEFAULT),
    ({"tags": {"": "y"}}, [("aws.tags.", 'tag key "" must be 1 to 128 characters long (it has '
                                         "0)")], DEFAULT),
    ({"tags": {"k" * 129: "y"}},
     [(f"aws.tags.{'k' * 129}", f'tag key "{"k" * 129}" must be 1 to 128 characters long (it '
                                "has 129)")], DEFAULT),
    ({"tags": {"k": "v" * 257}},
     [("aws.tags.k", 'the value of tag "k" must be at most 256 characters long (it has 257)')],
     DEFAULT),
    ({"tags": {"a,b": "c"}},
     [("aws.tags.a,b", 'tag key "a,b" has characters AWS refuses in tags: \',\' (allowed: '
                       "letters, digits, spaces and _ . : / = + - @)")], DEFAULT),
    ({"tags": {"a": "x;y*"}},
     [("aws.tags.a", 'tag value "x;y*" has characters AWS refuses in tags: \'*\' \';\' '
                     "(allowed: letters, digits, spaces and _ . : / = + - @)")], DEFAULT),
    ({"tags": {"n": 42, "b": True, 7: "x"}},
     [("aws.tags.n", "must be a string, not 42 (quote it in YAML)"),
      ("aws.tags.b", "must be a string, not True (quote it in YAML)"),
      ("aws.tags.7", "tag keys must be strings, not 7 (quote it in YAML)")], DEFAULT),
    ({"region": "x", "vpcID": "y", "bogus": 1, "secretKey": "z", "tags": {"k": "v"}},
     [("aws.bogus", "unknown key"), ("aws.secretKey", CREDENTIALS),
      ("aws.region", REGION + "'x'"), ("aws.vpcID", VPC + "'y'")],
     replace(DEFAULT, extra_tags=(("k", "v"),))),
]


@pytest.mark.parametrize(("raw", "expected", "settings"), BAD)
def test_bad_settings(raw: Any, expected: list[tuple[str, str]], settings: AwsSettings) -> None:
    assert parse_settings(raw, env={}) == (settings, expected)
    relative = [(path.removeprefix("aws").lstrip("."), message) for path, message in expected]
    assert validate_settings(raw) == relative


def test_validate_settings_paths_are_relative() -> None:
    assert validate_settings({"rateLimits": {"modify": 0}, "accessKeyID": "x"}) == [
        ("accessKeyID", CREDENTIALS), ("rateLimits.modify", RATE + "0")]


ENV_CASES: list[tuple[dict[str, Any], dict[str, str], str, str | None,
                      list[tuple[str, str]]]] = [
    # raw, env, region, endpoint, problems
    ({}, {"AWS_ENDPOINT_URL": "http://localhost:4566"}, "us-east-1",
     "http://localhost:4566", []),
    ({}, {"AWS_ENDPOINT_URL": "  "}, "us-east-1", None, []),
    ({"endpointURL": "http://config:4566"}, {"AWS_ENDPOINT_URL": "http://env:4566"},
     "us-east-1", "http://config:4566", []),
    ({"endpointURL": "nope"}, {"AWS_ENDPOINT_URL": "http://env:4566"}, "us-east-1", None,
     [("aws.endpointURL", ENDPOINT + "'nope'")]),
    ({}, {"AWS_ENDPOINT_URL": "localhost:4566"}, "us-east-1", None,
     [("aws.endpointURL", "not set, and the environment variable AWS_ENDPOINT_URL "
                          "('localhost:4566') is not an http:// or https:// URL: set "
                          "aws.endpointURL or fix it")]),
    ({}, {"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "us-west-2"}, "eu-central-1",
     None, []),
    ({}, {"AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2", None, []),
    ({"region": "ap-south-1"}, {"AWS_REGION": "eu-central-1"}, "ap-south-1", None, []),
    ({}, {"AWS_REGION": "moon"}, "us-east-1", None,
     [("aws.region", "not set, and the environment variable AWS_REGION ('moon') is not an AWS "
                     "region such as 'us-east-1': set aws.region")]),
]


@pytest.mark.parametrize(("raw", "env", "region", "endpoint", "expected"), ENV_CASES)
def test_environment_fallbacks(raw: dict[str, Any], env: dict[str, str], region: str,
                               endpoint: str | None, expected: list[tuple[str, str]]) -> None:
    settings, found = parse_settings(raw, env=env)
    assert (settings.region, settings.endpoint_url, found) == (region, endpoint, expected)


def test_validate_settings_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not a url")
    monkeypatch.setenv("AWS_REGION", "moon")
    assert validate_settings({}) == []


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localstack:4566")
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    settings, found = parse_settings({})
    assert (settings.endpoint_url, settings.region, found) == (
        "http://localstack:4566", "eu-north-1", [])


def test_not_a_mapping_still_reads_the_environment() -> None:
    settings, found = parse_settings(["x"], env={"AWS_ENDPOINT_URL": "http://e:1"})
    assert settings.endpoint_url == "http://e:1"
    assert found == [("aws", "must be a mapping (region, endpointURL, vpcID, rateLimits, tags), "
                             "not ['x']")]
