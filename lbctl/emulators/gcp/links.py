"""Names, keys and links: how GCE names a resource and how a request may refer to one.

Every object lives at `projects/P/<scope>/<collection>/<name>`, the scope being `global`,
`regions/R` or `zones/Z`. Self links use the public root (`https://www.googleapis.com/compute/v1/`)
as GCE writes them, so a provider compares and parses the same strings here as in production;
a reference may be that URL, `https://compute.googleapis.com/compute/v1/...` (or any host's
`/compute/v1/...`), a partial path from `projects/`, `regions/`, `zones/` or `global/`, or a bare
name in the referring object's own scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import GceError, invalid

API_ROOT = "https://www.googleapis.com/compute/v1/"
NAME_PATTERN = "[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
NAME = re.compile(NAME_PATTERN)
_URL = re.compile(r"^https?://[^/]+/compute/(?:v1|beta|alpha)/")


@dataclass(frozen=True, order=True)
class Key:
    """Where one object lives: `scope` is `global`, `regions/R` or `zones/Z`."""

    project: str
    scope: str
    collection: str
    name: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/{self.scope}/{self.collection}/{self.name}"

    @property
    def url(self) -> str:
        return API_ROOT + self.path

    @property
    def scope_url(self) -> str:
        return scope_url(self.project, self.scope)

    @property
    def region(self) -> str | None:
        """The region of a regional or zonal object."""
        kind, _, where = self.scope.partition("/")
        if kind == "regions":
            return where
        return zone_region(where) if kind == "zones" else None

    @property
    def zone(self) -> str | None:
        kind, _, where = self.scope.partition("/")
        return where if kind == "zones" else None

    def sibling(self, collection: str, name: str) -> Key:
        return Key(self.project, self.scope, collection, name)


def scope_url(project: str, scope: str) -> str:
    return f"{API_ROOT}projects/{project}/{scope}"


def zone_region(zone: str) -> str:
    """`us-central1-a` -> `us-central1`."""
    return zone.rpartition("-")[0]


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None


def check_name(name: object, field: str = "resource.name") -> str:
    """The name, or 400 invalid when it breaks GCE's rule (RFC 1035, 1-63 characters)."""
    if not isinstance(name, str) or not name:
        raise GceError(400, "required", f"Required field '{field}' not specified")
    if not valid_name(name):
        raise invalid(field, name, f"Must be a match of regex '(?:{NAME_PATTERN})'")
    return name


def parse_ref(value: object, field: str, home: Key, collection: str) -> Key:
    """The object `value` names in `collection`, read relative to `home` (the referring
    object: its project and scope fill what a partial reference leaves out). 400 invalid
    when it is no reference to that collection."""
    if not isinstance(value, str) or not value:
        raise GceError(400, "required", f"Required field '{field}' not specified")
    rest = _URL.sub("", value)
    parts = rest.split("/")
    project, scope = home.project, home.scope
    if parts[0] == "projects" and len(parts) >= 2:
        project, parts = parts[1], parts[2:]
    if len(parts) == 4 and parts[0] in ("regions", "zones"):
        scope, parts = f"{parts[0]}/{parts[1]}", parts[2:]
    elif len(parts) == 3 and parts[0] == "global":
        scope, parts = "global", parts[1:]
    elif len(parts) == 1 and rest == value:
        parts = [collection, parts[0]]
    if len(parts) != 2 or parts[0] != collection or not project:
        raise invalid(field, value, f"The URL is malformed: expected a reference to "
                                    f"{collection}.")
    if not valid_name(parts[1]):
        raise invalid(field, value, f"The URL is malformed: the name must be a match of "
                                    f"regex '(?:{NAME_PATTERN})'.")
    return Key(project, scope, collection, parts[1])
