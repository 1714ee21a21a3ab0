"""How azure-mgmt-network reaches the emulator: the one recipe tests and tools share.

The SDK needs a TokenCredential and its default bearer policy refuses plain http, so the
emulator's clients get a static token (the emulator takes any bearer token) and an
authentication policy that sets the header itself; retries are off (the SDK would otherwise
sleep any Retry-After in full: a test must see the 429) and the LRO polling interval is short.
The provider keeps its own copy in `providers/azure` (providers may not import lbctl.emulators).

This module imports no Azure library (an import-linter contract keeps lbctl free of cloud
SDKs): `client_kwargs` are plain objects azure-core accepts by shape (a credential with
`get_token`, a pipeline policy with `send` and `next`), and `network_client` takes the
`NetworkManagementClient` class from its caller, who imported the SDK.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

TOKEN = "lbctl-emulator-token"  # noqa: S105 - not a secret: the emulator takes any token


class AccessToken(NamedTuple):
    """azure.core.credentials.AccessToken's shape."""

    token: str
    expires_on: int


class StaticToken:
    """A TokenCredential that always answers the same token."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


class BearerHeader:
    """An azure-core HTTPPolicy (by shape) setting `Authorization: Bearer <token>`, over http
    too (the SDK's own bearer policy refuses non-TLS URLs)."""

    next: Any

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token

    def send(self, request: Any) -> Any:
        request.http_request.headers["Authorization"] = f"Bearer {self.token}"
        return self.next.send(request)


def client_kwargs(endpoint: str, polling_interval: float = 0.05) -> dict[str, Any]:
    """Keyword arguments for `NetworkManagementClient(subscription_id=..., **these)`."""
    return {"credential": StaticToken(), "base_url": endpoint.rstrip("/"),
            "authentication_policy": BearerHeader(), "retry_total": 0,
            "polling_interval": polling_interval}


def network_client(client_class: Any, endpoint: str, subscription: str,
                   polling_interval: float = 0.05) -> Any:
    """`client_class` (azure.mgmt.network.NetworkManagementClient) on the emulator."""
    return client_class(subscription_id=subscription,
                        **client_kwargs(endpoint, polling_interval))
