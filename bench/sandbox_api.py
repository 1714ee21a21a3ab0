"""Benchmark of the sandbox API server (issue 2): prints figures, asserts nothing.

Starts `lbctl sandbox` as its own process (so its RSS is its own), opens 3 watchers on
services, creates N ClusterIP Services from several concurrent HTTP clients, and reports:
creates/s, watch delivery latency (create sent -> event received at each watcher) p50/p99,
time to list 10,000 objects (raw JSON, in one call and in pages of 500, and through the official
Python client), and the server's RSS before and after.

Complete means: every create answered 201, every watcher saw every create's ADDED event (within
120 s of the last create), and each of the three lists returned all 10,000 Services. A run that
fell short prints "INCOMPLETE: done/wanted ..." under the table and no ratio.

    .venv/bin/python bench/sandbox_api.py [--services 5000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import psutil
import yaml
from kubernetes import client, config

from bench.completeness import NO_RATIO, Tally, ratio_text, shortfalls

LIST_SIZE = 10_000


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _watch(session: aiohttp.ClientSession, url: str, rv: str, want: int,
                 seen: dict[str, float], ready: asyncio.Event) -> None:
    params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "600"}
    async with session.get(f"{url}/api/v1/namespaces/bench/services", params=params) as resp:
        ready.set()
        buf = b""
        async for chunk in resp.content.iter_any():
            buf += chunk
            *lines, buf = buf.split(b"\n")
            now = time.perf_counter()
            for line in lines:
                event = orjson.loads(line)
                if event["type"] == "ADDED":
                    seen[event["object"]["metadata"]["name"]] = now
            if len(seen) >= want:
                return


async def _create_all(session: aiohttp.ClientSession, url: str, names: list[str],
                      concurrency: int, sent: dict[str, float], done: Tally) -> None:
    """POST every name; `done` counts the creates answered 201 (a failure is counted, not
    raised: the run goes on and says what fell short)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in names:
        queue.put_nowait(name)

    async def worker() -> None:
        while not queue.empty():
            name = queue.get_nowait()
            body = {"apiVersion": "v1", "kind": "Service", "metadata": {
                "name": name, "labels": {"app": name}},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}
            sent[name] = time.perf_counter()
            try:
                async with session.post(f"{url}/api/v1/namespaces/bench/services",
                                        data=orjson.dumps(body)) as resp:
                    text = "" if resp.status == 201 else (await resp.text())[:80]
                    done.add(resp.status == 201, f"{name}: {resp.status} {text}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                done.add(False, f"{name}: {type(exc).__name__} {exc}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _run(url: str, token: str, services: int, concurrency: int,
               tallies: list[Tally]) -> dict[str, float]:
    """The figures; `tallies` gets what each step completed."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    out: dict[str, float] = {}
    async with aiohttp.ClientSession(headers=headers) as session:
        await session.post(f"{url}/api/v1/namespaces", data=orjson.dumps(
            {"metadata": {"name": "bench"}}))
        async with session.get(f"{url}/api/v1/namespaces/bench/services") as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        seen = [dict[str, float]() for _ in range(3)]
        ready = [asyncio.Event() for _ in range(3)]
        watchers = [asyncio.create_task(_watch(session, url, rv, services, s, r))
                    for s, r in zip(seen, ready, strict=True)]
        for r in ready:
            await r.wait()
        names = [f"svc-{i:05d}" for i in range(services)]
        sent: dict[str, float] = {}
        created = Tally("creates answered 201", 0)
        t0 = time.perf_counter()
        await _create_all(session, url, names, concurrency, sent, created)
        elapsed = time.perf_counter() - t0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*watchers), 120)
        for task in watchers:
            task.cancel()
        tallies.append(created)
        out["creates_per_s"] = created.done / elapsed
        delivered = Tally("ADDED events delivered to the 3 watchers", 3 * services,
                          sum(len(s) for s in seen))
        tallies.append(delivered)
        lat = [(s[n] - sent[n]) * 1000 for s in seen for n in names if n in s and n in sent]
        out["watch_p50_ms"] = statistics.median(lat) if lat else float("nan")
        out["watch_p99_ms"] = _quantile(lat, 0.99) if lat else float("nan")
        # Fill up to 10,000 objects of one type, then list them.
        more = [f"svc-{i:05d}" for i in range(services, LIST_SIZE)]
        filled = Tally("fill creates answered 201", 0)
        await _create_all(session, url, more, concurrency, {}, filled)
        if more:
            tallies.append(filled)
        t0 = time.perf_counter()
        async with session.get(f"{url}/api/v1/namespaces/bench/services") as resp:
            body = await resp.read()
        out["list_10k_raw_s"] = time.perf_counter() - t0
        out["list_10k_items"] = len(orjson.loads(body)["items"]) if resp.status == 200 else 0
        t0 = time.perf_counter()
        token_ = ""
        count = 0
        while True:
            params = {"limit": "500", **({"continue": token_} if token_ else {})}
            async with session.get(f"{url}/api/v1/namespaces/bench/services",
                                   params=params) as resp:
                page = await resp.json()
            count += len(page["items"])
            token_ = page["metadata"].get("continue", "")
            if not token_:
                break
        out["list_10k_paged_s"] = time.perf_counter() - t0
        out["list_10k_paged_items"] = count
    return out


def list_tallies(figures: dict[str, float]) -> dict[str, Tally]:
    """Per list figure: did its list return every Service."""
    return {key: Tally(f"Services in the {what}", LIST_SIZE, int(figures[items]))
            for key, items, what in (("list_10k_raw_s", "list_10k_items", "one-call list"),
                                     ("list_10k_paged_s", "list_10k_paged_items",
                                      "paged list"),
                                     ("official_s", "official_items", "official client's list"))}


def _measure(args: argparse.Namespace, extra: list[str]) -> tuple[dict[str, float],
                                                                  list[Tally]]:
    with tempfile.TemporaryDirectory() as tmp:
        kc = Path(tmp) / "kc"
        proc = subprocess.Popen([sys.executable, "-m", "lbctl", "sandbox", "--nodes", "3",
                                 "--no-traffic", *extra, "--kubeconfig", str(kc)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "ready" not in line:
            raise SystemExit(f"sandbox did not start: {line!r}")
        doc = yaml.safe_load(kc.read_text())
        url = doc["clusters"][0]["cluster"]["server"]
        token = doc["users"][0]["user"]["token"]
        server = psutil.Process(proc.pid)
        rss0 = server.memory_info().rss / 2**20
        tallies: list[Tally] = []
        try:
            figures = asyncio.run(_run(url, token, args.services, args.concurrency, tallies))
            figures["rss_idle"] = rss0
            figures["rss_after"] = server.memory_info().rss / 2**20
            api = config.new_client_from_config(config_file=str(kc))
            t0 = time.perf_counter()
            listed = client.CoreV1Api(api).list_namespaced_service("bench")
            figures["official_s"] = time.perf_counter() - t0
            figures["official_items"] = len(listed.items)
            api.close()
        finally:
            proc.terminate()
            proc.wait(30)
    return figures, tallies + list(list_tallies(figures).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    core, core_tallies = _measure(args, ["--no-workloads"])
    full, full_tallies = _measure(args, [])
    print(f"sandbox API benchmark: {args.services} ClusterIP services, 3 watchers, "
          f"{args.concurrency} concurrent creators")
    print(f"  {'':34}{'API core':>12}{'+ controllers':>16}   (controllers also write an "
          "EndpointSlice and Endpoints per Service)")
    rows = [("creates/s", "creates_per_s", "{:.0f}"),
            ("watch delivery p50 (ms)", "watch_p50_ms", "{:.1f}"),
            ("watch delivery p99 (ms)", "watch_p99_ms", "{:.1f}"),
            ("list 10,000 services, raw (s)", "list_10k_raw_s", "{:.3f}"),
            ("  same, pages of 500 (s)", "list_10k_paged_s", "{:.3f}"),
            ("  same, official client (s)", "official_s", "{:.3f}"),
            ("server RSS idle (MiB)", "rss_idle", "{:.1f}"),
            ("server RSS after (MiB)", "rss_after", "{:.1f}")]
    for label, key, fmt in rows:
        print(f"  {label:34}{fmt.format(core[key]):>12}{fmt.format(full[key]):>16}")
    for column, tallies in (("API core", core_tallies), ("+ controllers", full_tallies)):
        for line in shortfalls(tallies):
            print(f"  {column}: {line}")
    lists = list_tallies(core)
    raw = lists["list_10k_raw_s"]
    official = ratio_text(core["official_s"], core["list_10k_raw_s"], raw,
                          lists["official_s"], spec=".1f", suffix="x")
    paged = ratio_text(core["list_10k_paged_s"], core["list_10k_raw_s"], raw,
                       lists["list_10k_paged_s"], spec=".1f", suffix="x")
    print(f"  official client / raw list: {official}; pages / one call: {paged}"
          + ("" if NO_RATIO not in (official, paged) else
             "  (no ratio from a list that did not return every Service)"))


if __name__ == "__main__":
    main()
