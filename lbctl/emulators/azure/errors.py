"""ARM's error answers, so a provider tested here classifies errors as it must in Azure.

Every refusal is `{"error": {"code", "message"}}` with an HTTP status; azure-core maps 404 to
ResourceNotFoundError, 409 to ResourceExistsError, 401 to ClientAuthenticationError and the rest
to HttpResponseError, so the `code` is what a provider must read. A failed long-running operation
carries the same `error` object inside `{"status": "Failed"}` behind an HTTP 200.

Codes as ARM answers them (seen in ARM's answers quoted in public reports): ResourceNotFound,
ResourceGroupNotFound, PreconditionFailed, AnotherOperationInProgress, PublicIPAddressInUse,
InvalidResourceReference, ReferencedResourceNotProvisioned (its message in the shape upstream
parses), SubscriptionRequestsThrottled, SecurityRuleConflict,
RulesUseSameBackendPortProtocolAndPool, FrontendIPConfigHasBothSubnetAndPublicIP,
PublicIPAndLBSkuDoNotMatch,
PublicIPReferencedByMultipleIPConfigs, InUseSubnetCannotBeDeleted,
InUseNetworkSecurityGroupCannotBeDeleted, PrivateIPAddressInUse, PrivateIPAddressNotInSubnet,
NetcfgSubnetRangeOutsideVnet, NetcfgSubnetRangesOverlap, InvalidResourceName,
LinkedInvalidPropertyId, MissingApiVersionParameter, AuthenticationFailed, InvalidRequestFormat,
DnsRecordInUse. Where the real code was not at hand the emulator names the refusal plainly
(LoadBalancingRuleFrontendPortConflict, LoadBalancer<Part>LimitReached,
LoadBalancerWithPublicAndPrivateFrontends, StandardSkuPublicIPAddressMustBeStatic,
PublicIPAddressNotAvailable, InUseVirtualNetworkCannotBeDeleted, ...): a provider should treat
those by status, not by name.
"""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An ARM refusal: HTTP `status`, `code`, `message`, optional extra response headers."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})

    def error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    def body(self) -> dict[str, Any]:
        return {"error": self.error()}


def bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def resource_not_found(kind: str, name: str, group: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource 'Microsoft.Network/{kind}/{name}' under resource group "
                    f"'{group}' was not found. For more details please go to "
                    "https://aka.ms/ARMResourceNotFoundFix")


def child_not_found(rid: str) -> ArmError:
    return ArmError(404, "NotFound", f"Resource {rid} not found.")


def group_not_found(group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def precondition_failed(rid: str) -> ArmError:
    return ArmError(412, "PreconditionFailed",
                    f"Precondition failed for {rid}: the etag given does not match the "
                    "resource's current etag.")


def in_progress(rid: str, operation: str) -> ArmError:
    return ArmError(409, "AnotherOperationInProgress",
                    f"Another operation on this or dependent resource is in progress. To "
                    f"retrieve status of the operation use uri: {operation}. Resource: {rid}")


def invalid_reference(rid: str, referenced_by: str, why: str = "was not found") -> ArmError:
    return bad_request("InvalidResourceReference",
                       f"Resource {rid} referenced by resource {referenced_by} {why}. Please "
                       "make sure that the referenced resource exists, and that both resources "
                       "are in the same region.")


def invalid_name(name: str, kind: str) -> ArmError:
    return bad_request("InvalidResourceName",
                       f"Resource name {name} is invalid. The name can be up to 80 characters "
                       "long. It must begin with a word character, and it must end with a word "
                       "character or with '_'. The name may contain word characters or '.', "
                       f"'-', '_'. ({kind})")


def invalid(field: str, value: Any, why: str) -> ArmError:
    return bad_request("InvalidRequestFormat",
                       f"Cannot parse the request: the value {value!r} of {field} is invalid: "
                       f"{why}")


def throttled(family: str, subscription: str, retry_after: int) -> ArmError:
    return ArmError(429, "SubscriptionRequestsThrottled",
                    f"Number of '{family}' requests for subscription '{subscription}' exceeded. "
                    f"Please try again after '{retry_after}' seconds.",
                    {"Retry-After": str(retry_after)})


def unauthenticated(why: str) -> ArmError:
    return ArmError(401, "AuthenticationFailed", f"Authentication failed. {why}")


def not_emulated(what: str) -> ArmError:
    return ArmError(501, "NotImplemented", f"{what} is not emulated by lbctl's ARM emulator")
