"""Benchmark of the controller (issue 4): prints figures side by side, asserts nothing.

1. Provisioning: N LoadBalancer Services (default 500) created at once, each ensure taking
   200 ms in the fake provider; time from the first create to the last ingress, with 1 worker
   (upstream's default) and with lbctl's default config (8 workers, 20 QPS / 40 burst to the
   API server); a third run lifts the client-side QPS limit to show what the workers alone buy.
2. Node sync: 300 provisioned Services, one Node added: provider calls, API writes and time
   until every balancer has the new backend (debounced, one ensure per Service).
3. Memory: 10,000 LoadBalancer Services (`allocateLoadBalancerNodePorts: false`, ~2.6 KB each
   with a last-applied annotation), 2,000 Nodes (~8.6 KB each) and an EndpointSlice per Service
   (3 endpoints, ~1.5 KB) in the sandbox; the RSS of a process running only lbctl's two
   informers (slim records, lists in pages of 500), next to processes holding the same objects
   as plain dicts and as official client models; then the whole Controller (standing by, not
   leading: its informers, caches and objects, no syncs) with the endpoints target mode unused
   (a provider without it: the EndpointSlice informer never starts, the slices in the cluster
   cost nothing) and used (a provider with it: every Service lacks nodePorts, so the first one
   starts the informer, which caches every slice).

The sandbox runs as a process of its own (no workloads, no traffic), the controller in this
process with the recording fake provider; every RSS is measured from outside with psutil.

    .venv/bin/python bench/controller.py [--services 500] [--node-services 300]
        [--rss-services 10000] [--rss-nodes 2000] [--rss-slices N (default: one per Service)]
        [--skip provisioning,nodes,memory]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

# aiohttp, psutil and yaml are imported where used: the `--hold` child processes, whose RSS is
# the figure, import only what they measure.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `lbctl` and `providers` importable
    sys.path.insert(0, str(ROOT))

NAMESPACE = "bench"


# -- the sandbox, as a process of its own -------------------------------------------------------
def serve_sandbox(kubeconfig: str) -> None:
    """Child mode: a sandbox without workloads or traffic until stdin closes."""
    from lbctl.sandbox.app import SandboxOptions, SandboxThread
    from lbctl.sandbox.nodes import simulated

    thread = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=Path(kubeconfig),
                                          workloads=False, bookmark_interval=5.0))
    box = thread.start()
    print(f"ready {box.url}", flush=True)
    sys.stdin.read()
    thread.stop()


@dataclass
class SandboxProcess:
    """`with SandboxProcess() as box:` a fresh sandbox; `box.kubeconfig`, `box.url`."""

    tmp: tempfile.TemporaryDirectory[str] = field(default_factory=tempfile.TemporaryDirectory)
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    token: str = ""

    @property
    def kubeconfig(self) -> str:
        return str(Path(self.tmp.name) / "kubeconfig")

    def __enter__(self) -> SandboxProcess:
        import yaml

        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-sandbox",
                                      self.kubeconfig], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"sandbox did not start: {line!r}")
        doc = yaml.safe_load(Path(self.kubeconfig).read_text())
        self.url = doc["clusters"][0]["cluster"]["server"]
        self.token = doc["users"][0]["user"]["token"]
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.tmp.cleanup()


async def _post_all(url: str, token: str, requests: Iterable[tuple[str, dict[str, Any]]],
                    concurrency: int, sent: dict[str, float] | None = None) -> None:
    """POST each (path, body) with `concurrency` clients; `sent[name]` = when it went out."""
    import aiohttp

    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                path, body = queue.get_nowait()
                if sent is not None:
                    sent[body["metadata"]["name"]] = time.monotonic()
                async with session.post(url + path, data=orjson.dumps(body)) as resp:
                    if resp.status not in (200, 201, 409):
                        raise RuntimeError(f"POST {path}: {resp.status} {await resp.text()}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def post_all(box: SandboxProcess, requests: Iterable[tuple[str, dict[str, Any]]],
             concurrency: int = 8, sent: dict[str, float] | None = None) -> None:
    asyncio.run(_post_all(box.url, box.token, list(requests), concurrency, sent))


def namespace(box: SandboxProcess) -> None:
    post_all(box, [("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})], 1)


def small_lb(name: str) -> tuple[str, dict[str, Any]]:
    return (f"/api/v1/namespaces/{NAMESPACE}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 8080}]}})


def audit(box: SandboxProcess) -> list[dict[str, Any]]:
    import urllib.request

    req = urllib.request.Request(box.url + "/sandbox/audit",  # noqa: S310  (our sandbox)
                                 headers={"Authorization": f"Bearer {box.token}"})
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
        items: list[dict[str, Any]] = orjson.loads(resp.read())["items"]
        return items


# -- the controller, in this process ------------------------------------------------------------
class TimedFake:
    """The recording fake provider, sleeping `latency` per call, noting when ensures end."""

    def __init__(self, latency: float) -> None:
        from providers.fake import FakeProvider

        self.fake = FakeProvider(latency=latency)
        self.ensured_at: list[float] = []
        self._lock = threading.Lock()
        real = self.fake.ensure

        def ensure(spec: Any) -> Any:
            status = real(spec)
            with self._lock:
                self.ensured_at.append(time.monotonic())
            return status

        self.fake.ensure = ensure  # type: ignore[method-assign]


@dataclass
class RunningController:
    stop: Callable[[], None]
    qps: float
    burst: int
    workers: int
    dropped_events: Callable[[], int]


def start_controller(box: SandboxProcess, provider: Any, config_text: str) -> RunningController:
    from lbctl.controller.config import parse_config
    from lbctl.controller.controller import Controller
    from lbctl.controller.events import BackgroundEvents
    from lbctl.controller.kube_writes import KubeEventWriter, KubeServiceWrites
    from lbctl.controller.metrics import Metrics
    from lbctl.kube import Kube

    config = parse_config(config_text)
    settings = config.controller
    kube = Kube.connect(box.kubeconfig, qps=settings.qps, burst=settings.burst)  # as `run`
    events = BackgroundEvents(KubeEventWriter(kube))
    controller = Controller(kube, lambda: config, lambda _cache: provider,
                            KubeServiceWrites(kube), events, Metrics())
    controller.start()
    controller.start_leading()

    def stop() -> None:
        controller.stop()
        events.close()
        kube.close()

    return RunningController(stop, settings.qps, settings.burst, settings.workers,
                             lambda: events.dropped)


class IngressWatch:
    """An informer of our own (no rate limit): when each Service first showed an ingress."""

    def __init__(self, box: SandboxProcess) -> None:
        from lbctl.controller.records import service_view
        from lbctl.kube import SERVICES, Handlers, Informer, Kube
        from providers.cluster import ServiceView

        self.kube = Kube.connect(box.kubeconfig, qps=0)
        self.seen: dict[str, float] = {}
        self.changes = 0
        self._cond = threading.Condition()

        def saw(svc: ServiceView) -> None:
            if svc.ingress and svc.name not in self.seen:
                with self._cond:
                    self.seen[svc.name] = time.monotonic()
                    self._cond.notify_all()

        def updated(_old: ServiceView, new: ServiceView) -> None:
            self.changes += 1
            saw(new)

        self.informer = Informer(self.kube, SERVICES, service_view, namespace=NAMESPACE)
        self.informer.add_handlers(Handlers(saw, updated, None))
        self.informer.start()
        self.informer.wait_for_sync(30)

    def wait(self, count: int, timeout: float) -> bool:
        """Whether `count` Services showed an ingress within `timeout` (the count is checked
        on every arrival: an early one cannot end the wait, as a flag set with the count
        still 0 once did)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.seen) >= count, timeout)

    def close(self) -> None:
        self.informer.stop()
        self.kube.close()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def provisioning(services: int, latency: float, workers: int, qps: float | None,
                 burst: int | None) -> dict[str, float]:
    limits = f", qps: {qps}, burst: {burst}" if qps is not None else ""
    config = f"provider: fake\ncontroller: {{workers: {workers}{limits}}}\n"
    with SandboxProcess() as box:
        namespace(box)
        provider = TimedFake(latency)
        ctl = start_controller(box, provider.fake, config)
        watch = IngressWatch(box)
        try:
            names = [f"lb-{i:04d}" for i in range(services)]
            sent: dict[str, float] = {}
            t0 = time.monotonic()
            post_all(box, (small_lb(n) for n in names), 8, sent)
            created = time.monotonic() - t0
            finished = watch.wait(services, services * latency * 2 + 300)
            elapsed = max(watch.seen.values()) - t0 if watch.seen else float("nan")
            waits = [watch.seen[n] - sent[n] for n in names if n in watch.seen]
            by_then = audit(box)  # right after the last ingress
            dropped = ctl.dropped_events()
        finally:
            ctl.stop()
            watch.close()
    svc_writes = [e for e in by_then if e["resource"] == "services" and e["verb"] == "patch"]
    event_writes = [e for e in by_then if e["resource"] == "events"
                    and e["verb"] in ("create", "patch")]
    return {"elapsed": elapsed, "created": created, "p50": statistics.median(waits),
            "p99": _quantile(waits, 0.99), "ingress": len(watch.seen),
            "ensures": len(provider.fake.ops("ensure")), "finished": float(finished),
            "qps": ctl.qps, "burst": ctl.burst, "workers": ctl.workers,
            "svc_writes": len(svc_writes), "event_writes": len(event_writes),
            "dropped": dropped}


def node_sync(services: int, latency: float) -> dict[str, float]:
    config = "provider: fake\ncontroller: {qps: 200, burst: 400}\n"
    with SandboxProcess() as box:
        namespace(box)
        provider = TimedFake(latency)
        ctl = start_controller(box, provider.fake, config)
        watch = IngressWatch(box)
        try:
            post_all(box, (small_lb(f"lb-{i:04d}") for i in range(services)), 8)
            if not watch.wait(services, services * latency + 120):
                return {"incomplete": float(len(watch.seen))}
            time.sleep(1.0)  # let the last status writes and events land
            before = len(provider.fake.ops())
            ensured_before = len(provider.ensured_at)
            writes_before = len(audit(box))
            node = {"metadata": {"name": "bench-new-node", "labels": {
                "topology.kubernetes.io/zone": "zone-a"}},
                "spec": {"providerID": "bench://bench-new-node"},
                "status": {"addresses": [{"type": "InternalIP", "address": "127.0.10.99"}]}}
            t0 = time.monotonic()
            post_all(box, [("/api/v1/nodes", node)], 1)
            deadline = t0 + services * latency + 120
            while (len(provider.ensured_at) < ensured_before + services
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            first = provider.ensured_at[ensured_before] if len(
                provider.ensured_at) > ensured_before else float("nan")
            last = provider.ensured_at[-1]
            time.sleep(2.0)  # anything more would show up now
            calls = provider.fake.ops()[before:]
            with_node = [c for c in calls if c.op == "ensure" and "bench-new-node" in c.targets]
            later = audit(box)[writes_before:]
            status_patches = [e for e in later if e["resource"] == "services"
                              and e["verb"] == "patch"]
            events = [e for e in later if e["resource"] == "events"]
        finally:
            ctl.stop()
            watch.close()
    return {"calls": len(calls), "ensures": len([c for c in calls if c.op == "ensure"]),
            "with_node": len(with_node),
            "distinct": len({c.service for c in calls if c.op == "ensure"}),
            "other_calls": len([c for c in calls if c.op != "ensure"]),
            "first": first - t0, "last": last - t0,
            "service_patches": len(status_patches), "event_writes": len(events)}


# -- memory ---------------------------------------------------------------------------------------
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def big_service(i: int) -> tuple[str, dict[str, Any]]:
    """~2.6 KB as stored: labels, a ~1 KB last-applied annotation, two ports, a selector."""
    name = f"svc-{i:05d}"
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop",
              "app.kubernetes.io/managed-by": "kubectl", "team": f"team-{i % 40}",
              "env": "production", "tier": "frontend"}
    spec = {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
            "externalTrafficPolicy": "Cluster", "sessionAffinity": "None",
            "selector": {"app.kubernetes.io/name": name, "tier": "frontend"},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                      {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443}]}
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": name, "namespace": NAMESPACE,
                                         "labels": labels}, "spec": spec}
    applied = orjson.dumps(body).decode()
    body["metadata"]["annotations"] = {
        LAST_APPLIED: applied + " " * max(0, 1024 - len(applied)),
        "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8,192.168.0.0/16",
        "lbctl.io/owner": f"team-{i % 40}@example.com",
        "prometheus.io/scrape": "true", "prometheus.io/port": "9102",
        "meta.helm.sh/release-name": f"shop-{i % 40}", "meta.helm.sh/release-namespace": "shop",
        "example.com/runbook": f"https://runbooks.example.com/shop/frontend/{name}",
        "example.com/change-ticket": f"CHG{i:08d}",
        "example.com/description": f"storefront {name}: public HTTP and HTTPS entry point of "
                                   f"the shop, served by team-{i % 40}, paged out of hours"}
    return f"/api/v1/namespaces/{NAMESPACE}/services", body


def big_node(i: int) -> tuple[str, dict[str, Any]]:
    """~8.6 KB as stored: labels, annotations, capacity, conditions, nodeInfo, 31 images."""
    name = f"node-{i:05d}"
    zone = f"region-1{'abc'[i % 3]}"
    ip = f"10.{i // 250 % 250}.{i % 250}.10"
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
              "beta.kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/instance-type": "m5.xlarge",
              "node.kubernetes.io/instance-type": "m5.xlarge",
              "topology.kubernetes.io/region": "region-1",
              "topology.kubernetes.io/zone": zone,
              "failure-domain.beta.kubernetes.io/zone": zone,
              "node-pool": f"pool-{i % 7}", "team": "platform"}
    beat = "2026-01-01T00:00:00Z"
    conditions = [{"type": t, "status": s, "lastHeartbeatTime": beat,
                   "lastTransitionTime": beat, "reason": r, "message": m}
                  for t, s, r, m in (
                      ("MemoryPressure", "False", "KubeletHasSufficientMemory",
                       "kubelet has sufficient memory available"),
                      ("DiskPressure", "False", "KubeletHasNoDiskPressure",
                       "kubelet has no disk pressure"),
                      ("PIDPressure", "False", "KubeletHasSufficientPID",
                       "kubelet has sufficient PID available"),
                      ("Ready", "True", "KubeletReady",
                       "kubelet is posting ready status. AppArmor enabled"))]
    images = [{"names": [f"registry.example.com/team-{k}/service-{k}@sha256:"
                         f"{(k * 7919 + i) % 10**12:064d}",
                         f"registry.example.com/team-{k}/service-{k}:v1.{k}.{i % 10}"],
               "sizeBytes": 10_000_000 + k * 123_457} for k in range(31)]
    resources = {"cpu": "4", "memory": "16106128Ki", "pods": "110",
                 "ephemeral-storage": "101445540Ki", "hugepages-1Gi": "0",
                 "hugepages-2Mi": "0", "attachable-volumes-aws-ebs": "25"}
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": name, "labels": labels, "annotations": {
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            "csi.volume.kubernetes.io/nodeid": orjson.dumps(
                {"ebs.csi.aws.com": f"i-{i:017x}"}).decode()}},
        "spec": {"providerID": f"aws:///{zone}/i-{i:017x}", "podCIDR": f"10.244.{i % 256}.0/24",
                 "podCIDRs": [f"10.244.{i % 256}.0/24"]},
        "status": {"capacity": resources, "allocatable": resources, "conditions": conditions,
                   "addresses": [{"type": "InternalIP", "address": ip},
                                 {"type": "Hostname", "address": name},
                                 {"type": "InternalDNS", "address": f"{name}.ec2.internal"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                   "nodeInfo": {"machineID": f"{i:032x}", "systemUUID": f"ec2{i:029x}",
                                "bootID": f"{i * 31:032x}", "kernelVersion": "6.1.0-13-amd64",
                                "osImage": "Debian GNU/Linux 12 (bookworm)",
                                "containerRuntimeVersion": "containerd://1.7.13",
                                "kubeletVersion": "v1.33.0", "kubeProxyVersion": "v1.33.0",
                                "operatingSystem": "linux", "architecture": "amd64"},
                   "images": images}}
    return "/api/v1/nodes", body


def big_slice(i: int) -> tuple[str, dict[str, Any]]:
    """~1.5 KB as stored: svc-<i>'s EndpointSlice as the EndpointSlice controller writes it,
    three ready pods on three nodes, two ports."""
    name = f"svc-{i:05d}"
    endpoints = [{"addresses": [f"10.{100 + k}.{i // 250 % 250}.{i % 250}"],
                  "conditions": {"ready": True, "serving": True, "terminating": False},
                  "nodeName": f"node-{(i * 3 + k) % 2000:05d}",
                  "zone": f"region-1{'abc'[k]}",
                  "targetRef": {"kind": "Pod", "namespace": NAMESPACE,
                                "name": f"{name}-7c9f8d6b5-{k:05d}",
                                "uid": f"{i:08x}-0000-4000-8000-{k:012x}"}}
                 for k in range(3)]
    body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-abcde", "namespace": NAMESPACE,
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by":
                                        "endpointslice-controller.k8s.io",
                                    "app.kubernetes.io/name": name, "tier": "frontend"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time":
                                         "2026-01-01T00:00:00Z"}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080},
                      {"name": "https", "protocol": "TCP", "port": 8443}]}
    return f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices", body


class _Quiet:
    """Writes and events of a controller that never leads (none are made)."""

    def set_finalizer(self, *_: Any) -> None: ...
    def patch_status(self, *_: Any) -> None: ...
    def event(self, *_: Any) -> None: ...


def hold_controller(kubeconfig: str, endpoints: bool) -> tuple[Any, tuple[int, int, int]]:
    """The Controller, synced and standing by, its provider with or without the endpoints
    target mode. Answers it and (Services, Nodes, EndpointSlices) cached."""
    from lbctl.controller.config import parse_config
    from lbctl.controller.controller import Controller
    from lbctl.controller.metrics import Metrics
    from lbctl.kube import Kube
    from providers.fake import FakeProvider
    from providers.interface import Capabilities

    modes = frozenset({"nodePort", "endpoints"} if endpoints else {"nodePort"})
    fake = FakeProvider(capabilities=Capabilities(target_modes=modes))
    config = parse_config("provider: fake\n")
    kube = Kube.connect(kubeconfig, qps=config.controller.qps, burst=config.controller.burst)
    controller = Controller(kube, lambda: config, lambda _cache: fake, _Quiet(), _Quiet(),
                            Metrics())
    controller.start(600)
    slices = controller.slices.informer
    if endpoints and (slices is None or not slices.wait_for_sync(600)):
        raise RuntimeError("the EndpointSlice informer did not start or sync")
    return controller, (len(controller.services), len(controller.nodes), len(controller.slices))


def hold(kind: str, kubeconfig: str) -> None:
    """Child mode: import what `kind` needs, report, load everything that way, report, wait."""
    held: Any
    if kind == "models":
        from kubernetes import client, config
    elif kind.startswith("controller"):
        import lbctl.controller.controller  # noqa: F401  (imported before the baseline,
        import providers.fake  # noqa: F401  like the other kinds' imports)
    else:
        from lbctl.controller.records import node_view, service_view
        from lbctl.kube import NODES, SERVICES, Informer, Kube
    gc.collect()
    print("imported", flush=True)  # the parent measures the baseline now
    sys.stdin.readline()
    t0 = time.perf_counter()
    cached_slices = 0
    if kind.startswith("controller"):
        held, (n_svc, n_node, cached_slices) = hold_controller(kubeconfig,
                                                                 kind == "controller-endpoints")
        counts = (n_svc, n_node)
    elif kind.startswith("informers"):
        page = int(kind.partition("-")[2] or 500)
        kube = Kube.connect(kubeconfig, qps=20, burst=40)  # lbctl's default limits
        services = Informer(kube, SERVICES, service_view, name="services", page_size=page)
        nodes = Informer(kube, NODES, node_view, name="nodes", page_size=page)
        services.start()
        nodes.start()
        services.wait_for_sync(600)
        nodes.wait_for_sync(600)
        held = (services, nodes)
        counts = (len(services), len(nodes))
    elif kind == "dicts":
        kube = Kube.connect(kubeconfig, qps=0)
        svcs = kube.request("GET", SERVICES.path())["items"]
        nodes_ = kube.request("GET", NODES.path())["items"]
        held = (svcs, nodes_)
        counts = (len(svcs), len(nodes_))
    else:
        api = config.new_client_from_config(config_file=kubeconfig)
        core = client.CoreV1Api(api)
        svcs = core.list_service_for_all_namespaces().items
        nodes_ = core.list_node().items
        held = (svcs, nodes_)
        counts = (len(svcs), len(nodes_))
    elapsed = time.perf_counter() - t0
    gc.collect()
    print(f"loaded {counts[0]} {counts[1]} {elapsed:.2f} {cached_slices}", flush=True)
    sys.stdin.readline()
    del held


def measure(kind: str, kubeconfig: str) -> dict[str, float]:
    import psutil

    proc = subprocess.Popen([sys.executable, __file__, "--hold", kind, kubeconfig],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "imported":
            raise RuntimeError(f"{kind}: child failed to start")
        me = psutil.Process(proc.pid)
        base = me.memory_info().rss / 2**20
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline().split()
        if not line or line[0] != "loaded":
            raise RuntimeError(f"{kind}: child failed: {line}")
        rss = me.memory_info().rss / 2**20
        proc.stdin.write("bye\n")
        proc.stdin.flush()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return {"base": base, "rss": rss, "services": float(line[1]), "nodes": float(line[2]),
            "seconds": float(line[3]), "slices": float(line[4])}


MEMORY_KINDS = ("informers", "informers-100", "dicts", "models", "controller",
                "controller-endpoints")


def memory(services: int, nodes: int, slices: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with SandboxProcess() as box:
        namespace(box)
        t0 = time.monotonic()
        post_all(box, (big_service(i) for i in range(services)), 16)
        post_all(box, (big_node(i) for i in range(nodes)), 16)
        post_all(box, (big_slice(i) for i in range(slices)), 16)
        out["fill_seconds"] = time.monotonic() - t0
        from lbctl.kube import NODES, SERVICES, Kube

        kube = Kube.connect(box.kubeconfig, qps=0)
        one_svc = kube.request("GET", SERVICES.path(NAMESPACE, "svc-00001"))
        one_node = kube.request("GET", NODES.path(None, "node-00001"))
        kube.close()
        out["svc_bytes"] = len(orjson.dumps(one_svc))
        out["node_bytes"] = len(orjson.dumps(one_node))
        out["slice_bytes"] = len(orjson.dumps(big_slice(1)[1]))
        for kind in MEMORY_KINDS:
            out[kind] = measure(kind, box.kubeconfig)
    return out


# -- report ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--node-services", type=int, default=300)
    parser.add_argument("--rss-services", type=int, default=10_000)
    parser.add_argument("--rss-nodes", type=int, default=2_000)
    parser.add_argument("--rss-slices", type=int, default=None,
                        help="EndpointSlices in the memory run (default: one per Service)")
    parser.add_argument("--skip", default="", help="comma-separated: provisioning,nodes,memory")
    parser.add_argument("--serve-sandbox", metavar="KUBECONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--hold", nargs=2, metavar=("KIND", "KUBECONFIG"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandbox:
        serve_sandbox(args.serve_sandbox)
        return
    if args.hold:
        hold(*args.hold)
        return
    skip = set(args.skip.split(","))
    # An Event backlog still draining when a run's sandbox stops only logs failures: hide them.
    logging.getLogger("lbctl.controller.events").setLevel(logging.ERROR)
    started = time.monotonic()
    print(f"controller benchmark: fake provider sleeping {args.latency * 1000:.0f} ms per call; "
          "sandbox in its own process (no workloads)", flush=True)
    if "provisioning" not in skip:
        runs = [("upstream default: 1 worker", provisioning(args.services, args.latency, 1,
                                                            None, None)),
                ("lbctl default: 8 workers", provisioning(args.services, args.latency, 8,
                                                          None, None)),
                ("8 workers, QPS limit 500/1000", provisioning(args.services, args.latency,
                                                               8, 500, 1000))]
        base = runs[0][1]["elapsed"] if runs[0][1]["finished"] else None
        print(f"\n1. {args.services} LoadBalancer Services, create -> ingress "
              "(all created at once by 8 clients)")
        print(f"  {'':31} {'workers':>7} {'qps/burst':>9} {'total s':>7} {'ratio':>6} "
              f"{'p50 s':>6} {'p99 s':>6} {'ensures':>7} {'patches':>7} {'events':>9}")
        for label, r in runs:
            ratio = f"{base / r['elapsed']:5.2f}x" if base and r["finished"] else "    - "
            print(f"  {label:31} {r['workers']:7.0f} {r['qps']:>4.0f}/{r['burst']:<4.0f} "
                  f"{r['elapsed']:7.1f} {ratio} {r['p50']:6.1f} "
                  f"{r['p99']:6.1f} {r['ensures']:7.0f} {r['svc_writes']:7.0f} "
                  f"{r['event_writes']:5.0f}/{2 * args.services:<4d}"
                  + (f" ({r['dropped']:.0f} dropped)" if r["dropped"] else "")
                  + ("" if r["finished"] else f"  (only {r['ingress']:.0f} got ingress)"))
        print(f"  p50/p99: one Service's create -> ingress; patches (Service finalizer + status) "
              "and\n  events written (of 2 per Service) counted at the last ingress; floors: "
              f"{args.services} x {args.latency:.2f} s / workers, {2 * args.services} patches "
              "/ qps", flush=True)
    if "nodes" not in skip:
        n = node_sync(args.node_services, args.latency)
        print(f"\n2. one Node added, {args.node_services} provisioned Services "
              "(8 workers, debounce 1 s, qps 200)")
        if "incomplete" in n:
            print(f"  NOT MEASURED: only {n['incomplete']:.0f} of {args.node_services} Services "
                  "got an ingress before the node was to be added", flush=True)
        else:
            print(f"  provider calls                 {n['calls']:8d}  ({n['ensures']} ensure "
                  f"for {n['distinct']} Services, {n['with_node']} with the new node; "
                  f"{n['other_calls']} other)")
            print(f"  node create -> first / last ensure done (s)  {n['first']:6.2f} / "
                  f"{n['last']:.2f}"
                  + ("" if n["with_node"] >= args.node_services else
                     f"  (INCOMPLETE: {n['with_node']:.0f} of {args.node_services} ensured "
                     "with the node)"))
            print(f"  Service writes (status unchanged)   {n['service_patches']:4d}   "
                  f"Event writes {n['event_writes']}")
            print(f"  upstream (serial UpdateLoadBalancer): {args.node_services} calls, "
                  f">= {args.node_services * args.latency:.0f} s", flush=True)
    if "memory" not in skip:
        slices = args.rss_services if args.rss_slices is None else args.rss_slices
        m = memory(args.rss_services, args.rss_nodes, slices)
        print(f"\n3. memory with {args.rss_services} LoadBalancer Services "
              f"(~{m['svc_bytes'] / 1024:.1f} KB each as JSON), {args.rss_nodes} Nodes "
              f"(~{m['node_bytes'] / 1024:.1f} KB each) and {slices} EndpointSlices "
              f"(~{m['slice_bytes'] / 1024:.1f} KB each); sandbox filled in "
              f"{m['fill_seconds']:.0f} s")
        print(f"  {'cache holds':44} {'RSS MiB':>8} {'imports':>8} {'cache':>7} {'load s':>7} "
              f"{'objects':>12}")
        for kind, label in (("informers", "lbctl informers: slim records, pages of 500"),
                            ("informers-100", "the same, pages of 100"),
                            ("dicts", "plain dicts (one list call each)"),
                            ("models", "official client models (list_*)"),
                            ("controller", "Controller, endpoints mode unused"),
                            ("controller-endpoints", "Controller, endpoints mode used")):
            r = m[kind]
            objects = f"{r['services']:6.0f}+{r['nodes']:<5.0f}" + (
                f"+{r['slices']:.0f} slices" if r["slices"] else "")
            print(f"  {label:44} {r['rss']:8.1f} {r['base']:8.1f} {r['rss'] - r['base']:7.1f} "
                  f"{r['seconds']:7.2f} {objects}")
        unused, used = m["controller"], m["controller-endpoints"]
        complete = (used["slices"] == slices and unused["slices"] == 0
                    and min(unused["services"], used["services"]) >= args.rss_services)
        if complete:
            print(f"  the EndpointSlice informer when used: +{used['rss'] - unused['rss']:.1f} "
                  f"MiB for {slices} slices ({3 * slices} endpoints), "
                  f"{(used['rss'] - unused['rss']) * 2**20 / max(slices, 1):.0f} B a slice")
        else:
            print("  the EndpointSlice informer's cost: NOT MEASURED (a run did not cache "
                  "every object)")
        print("  RSS measured from outside after the load and a gc; imports: the same process "
              "before\n  loading (lbctl.kube imports the official client). Goal (P4) for the "
              "informers and the\n  Controller with the endpoints mode unused <= 120 MiB; "
              "reference: client models ~311 MB", flush=True)
    print(f"\nbenchmark took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
