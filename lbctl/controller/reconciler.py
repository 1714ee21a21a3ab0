"""One Service's sync: upstream's order of I/O around the pure decisions.

    cleanup  (finalizer held, and deleting or no longer a LoadBalancer):
        event DeletingLoadBalancer -> provider.delete -> remove finalizer -> DeletedLoadBalancer
    ensure:
        add finalizer BEFORE any cloud call -> [endpoints mode: the Service's EndpointSlices,
        or wait for their cache] -> build_spec -> check capabilities/validate ->
        meltdown step -> provider.ensure -> status patch only on change -> EnsuredLoadBalancer

A terminating Service is never ensured or patched; a Service of a foreign class is never touched.
The outcome tells the work queue what to do next: forget, poll after a fixed delay (RetryAfter,
held-back removals), or back off (transient errors). Permanent errors are not retried hot: the
next change of the Service or config brings the key back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from providers.cluster import NodeView, ServiceView
from providers.errors import PermanentError, ProviderError, RetryAfter, TransientError
from providers.interface import Provider, check_capabilities
from providers.spec import BalancerRef, LoadBalancerSpec, LoadBalancerStatus, ServiceRef, Target

from . import conditions
from .config import Config
from .decisions import (
    current_ingress,
    finalizer_for,
    held_finalizer,
    ingress_json,
    needs_cleanup,
    owned,
    released,
)
from .endpoints import target_mode
from .meltdown import limit_removals
from .records import EndpointSliceView
from .spec_builder import balancer_name, build_spec

log = logging.getLogger("lbctl.controller.reconciler")
HELD_BACK_RETRY = 10.0
SLICES_WAIT = 0.5
"""Seconds before a Service in the endpoints mode looks again for the EndpointSlice cache,
which its informer's first list fills (its adds re-queue the Service sooner)."""


class ServiceWrites(Protocol):
    """The API writes a sync makes (implemented over the Kubernetes client)."""

    def set_finalizer(self, svc: ServiceView, finalizer: str, present: bool) -> None: ...
    def patch_status(self, svc: ServiceView, status: dict[str, Any]) -> None: ...


class Recorder(Protocol):
    def event(self, svc: ServiceView, type_: str, reason: str, message: str) -> None: ...


class Cache(Protocol):
    def service(self, namespace: str, name: str) -> ServiceView | None: ...
    def nodes(self) -> list[NodeView]: ...
    def endpoint_slices(self, namespace: str,
                        name: str) -> list[EndpointSliceView] | None: ...


@dataclass(frozen=True)
class Outcome:
    """What the work queue does with the key: "done", "after" (fixed delay), "backoff"."""

    action: str
    delay: float = 0.0
    error: str = ""


DONE = Outcome("done")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ref_for(svc: ServiceView, config: Config) -> BalancerRef:
    return BalancerRef(balancer_name(config.cluster_name, svc), config.cluster_name,
                       ServiceRef(svc.namespace, svc.name, svc.uid))


class Reconciler:
    """Syncs one Service key at a time (the work queue guarantees per-key serialisation)."""

    def __init__(self, cache: Cache, provider: Provider, config: Callable[[], Config],
                 writes: ServiceWrites, recorder: Recorder,
                 clock: Callable[[], str] = _now) -> None:
        self.cache = cache
        self.provider = provider
        self.config = config
        self.writes = writes
        self.recorder = recorder
        self.clock = clock
        self._applied: dict[str, LoadBalancerSpec] = {}
        self._failed: set[str] = set()
        """Keys whose last sync failed: their next ensure is never skipped as a no-op."""
        self._lock = threading.Lock()

    def applied(self, key: str) -> LoadBalancerSpec | None:
        """The spec last ensured for `key` (drives meltdown steps and skips no-op ensures)."""
        with self._lock:
            return self._applied.get(key)

    def _forget(self, key: str) -> None:
        """A sync failed: the next one goes to the provider even when its spec equals the
        last one ensured (a fixed annotation gives that spec back, and must clear the
        failure the status still shows). The last ensured spec itself is kept: meltdown
        protection measures removals against it."""
        with self._lock:
            self._failed.add(key)

    def sync(self, key: str, force: bool = False) -> Outcome:
        namespace, _, name = key.partition("/")
        svc = self.cache.service(namespace, name)
        if svc is None:
            with self._lock:
                self._applied.pop(key, None)
                self._failed.discard(key)
            return DONE  # gone; anything left behind is found by orphan collection
        config = self.config()
        held = held_finalizer(svc, config)
        if not owned(svc, config) and held is None:
            return DONE  # never touched: no finalizer, no status, no event
        try:
            if held is not None and (needs_cleanup(svc, config) or released(svc, config)):
                return self._cleanup(svc, config, held)
            if svc.deleting or svc.type != "LoadBalancer":
                return DONE
            return self._ensure(svc, config, force)
        except PermanentError as exc:
            self._forget(key)
            self.recorder.event(svc, "Warning", exc.event or "SyncLoadBalancerFailed",
                                f"Error syncing load balancer: {exc}")
            if not svc.deleting:
                self._patch(svc, None, conditions.failed(
                    "InvalidConfiguration", str(exc), bool(svc.ingress), retrying=False))
            return Outcome("done", error=str(exc))
        except RetryAfter as exc:
            self._forget(key)
            partial = exc.status if isinstance(exc.status, LoadBalancerStatus) else None
            ingress = ingress_json(partial) if partial is not None and partial.ingress else None
            self._patch(svc, ingress, conditions.provisioning(
                str(exc), bool(svc.ingress) or ingress is not None))
            return Outcome("after", exc.seconds)
        except (ProviderError, OSError) as exc:
            self._forget(key)
            reason = "DeleteLoadBalancerFailed" if svc.deleting else (
                getattr(exc, "event", None) or "SyncLoadBalancerFailed")
            self.recorder.event(svc, "Warning", reason, f"Error syncing load balancer: {exc}")
            if not svc.deleting:
                self._patch(svc, None, conditions.failed(
                    "SyncFailed", str(exc), bool(svc.ingress), retrying=True))
            delay = exc.retry_after if isinstance(exc, TransientError) else None
            return Outcome("after", delay) if delay else Outcome("backoff", error=str(exc))

    # -- paths ------------------------------------------------------------------------------
    def _cleanup(self, svc: ServiceView, config: Config, finalizer: str) -> Outcome:
        ref = ref_for(svc, config)
        if svc.annotations.get("lbctl.io/release") == "true" and not svc.deleting:
            self.provider.release(ref)
            self.recorder.event(svc, "Normal", "ReleasedLoadBalancer",
                                f"released {ref.name} without deleting it")
        else:
            self.recorder.event(svc, "Normal", "DeletingLoadBalancer", "Deleting load balancer")
            self.provider.delete(ref)
            self.recorder.event(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer")
        if not svc.deleting:
            self._clear_status(svc)
        self.writes.set_finalizer(svc, finalizer, present=False)
        with self._lock:
            self._applied.pop(svc.key, None)
        return DONE

    def _ensure(self, svc: ServiceView, config: Config, force: bool) -> Outcome:
        finalizer = finalizer_for(svc)
        if finalizer not in svc.finalizers:
            self.writes.set_finalizer(svc, finalizer, present=True)
        caps = self.provider.capabilities
        slices: list[EndpointSliceView] = []
        if ("endpoints" in caps.target_modes
                and target_mode(svc, caps.default_target_mode) == "endpoints"):
            found = self.cache.endpoint_slices(svc.namespace, svc.name)
            if found is None:  # no pods known yet: an empty balancer would refuse everyone
                return Outcome("after", SLICES_WAIT)
            slices = found
        spec = build_spec(svc, self.cache.nodes(), config,
                          annotation_prefixes=caps.annotation_prefixes, slices=slices,
                          default_target_mode=caps.default_target_mode)
        check_capabilities(caps, spec)
        self.provider.validate(spec)
        previous = self.applied(svc.key)
        # meltdown protection guards node targets; endpoints come and go with rollouts, and a
        # change of mode is no loss of nodes
        same_mode = previous is not None and previous.target_mode == spec.target_mode
        step = limit_removals(previous.targets if previous and same_mode else None,
                              spec.targets, config.meltdown.max_removed_fraction)
        if step.held_back:
            spec = _with_targets(spec, step.targets)
        with self._lock:
            failed = svc.key in self._failed
        if previous == spec and not force and not failed:
            if not step.held_back:
                return DONE  # ensured and its status written since; the resync re-checks
            self._hold(svc, step.held_back)  # nothing to write to the provider: just report
            return Outcome("after", HELD_BACK_RETRY)
        self.recorder.event(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
        if not spec.targets and spec.target_mode == "nodePort":
            self.recorder.event(svc, "Warning", "UnAvailableLoadBalancer",
                                f"There are no available nodes for LoadBalancer service "
                                f"{svc.key}")
        status = self.provider.ensure(spec)
        degraded = status.degraded
        if step.held_back:
            degraded = self._hold(svc, step.held_back, patch=False)
        self._patch(svc, ingress_json(status),
                    conditions.ensured(degraded, status.serving, status.targets))
        if degraded and degraded != _condition_message(svc, conditions.DEGRADED):
            self.recorder.event(svc, "Warning", "LoadBalancerDegraded", degraded)
        with self._lock:  # only now: a failed status patch must lead to a full retry
            self._applied[svc.key] = spec
            self._failed.discard(svc.key)
        self.recorder.event(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
        return Outcome("after", HELD_BACK_RETRY) if step.held_back else DONE

    def _hold(self, svc: ServiceView, held: tuple[str, ...], patch: bool = True) -> str:
        message = (f"meltdown protection holds back removal of {len(held)} node(s): "
                   f"{', '.join(held)}")
        self.recorder.event(svc, "Warning", "MeltdownProtection", message)
        if patch:
            self._patch(svc, None, conditions.ensured(  # no provider call: counts kept
                message, targets=conditions.current_targets(svc.conditions)))
        return message

    # -- status -----------------------------------------------------------------------------
    def _patch(self, svc: ServiceView, ingress: list[dict[str, Any]] | None,
               wants: list[conditions.Want]) -> None:
        """Patch status only when ingress or our conditions differ from the cache."""
        if svc.deleting:
            return
        status: dict[str, Any] = {}
        if ingress is not None and ingress != current_ingress(svc):
            status["loadBalancer"] = {"ingress": ingress}
        merged = conditions.merge(svc.conditions, wants, svc.generation, self.clock())
        if merged is not None:
            status["conditions"] = merged
        if status:
            self.writes.patch_status(svc, status)

    def _clear_status(self, svc: ServiceView) -> None:
        status: dict[str, Any] = {}
        if svc.ingress:
            status["loadBalancer"] = {"ingress": None}
        ours = [c.type for c in svc.conditions if c.type in conditions.OURS]
        if ours:  # strategic merge: conditions merge by type, so delete ours by directive
            status["conditions"] = [{"type": t, "$patch": "delete"} for t in ours]
        if status:
            self.writes.patch_status(svc, status)


def _condition_message(svc: ServiceView, kind: str) -> str | None:
    """The message of our condition `kind` when it is True, else None."""
    return next((c.message for c in svc.conditions if c.type == kind and c.status == "True"),
                None)


def _with_targets(spec: LoadBalancerSpec, targets: tuple[Target, ...]) -> LoadBalancerSpec:
    return replace(spec, targets=targets)
