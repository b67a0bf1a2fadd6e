"""Admission webhook benchmark: ConfigMap creates against a real `kyb server` with no
webhook, with one validating webhook, with one mutating webhook (JSONPatch), and with a
ValidatingAdmissionPolicy, all answering on 127.0.0.1 over TLS.

    .venv/bin/python bench/webhooks.py [--objects 500] [--concurrency 8]

Prints a table and writes bench/results/webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from _load import pct, run_pool, write_result  # noqa: E402
from api import rss_mib  # noqa: E402
from fixtures.server import start_server  # noqa: E402
from fixtures.webhook_server import WebhookServer, json_patch, make_pki  # noqa: E402

ADM = "/apis/admissionregistration.k8s.io/v1"


def _hook(name: str, url: str, ca: str) -> dict:
    return {"name": name, "clientConfig": {"url": url, "caBundle": ca}, "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"bench": "webhooks"}}}


async def bench(args) -> dict:
    results: dict = {"objects": args.objects, "concurrency": args.concurrency, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(Path(tmp) / "kyb")
        hooks = WebhookServer(make_pki()).start(Path(tmp))
        hooks.route("/allow", lambda req: {"allowed": True})
        hooks.route("/mutate", lambda req: json_patch([{"op": "add", "path": "/data/added", "value": "1"}]))
        try:
            conn = aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=args.concurrency * 2)
            async with aiohttp.ClientSession(srv.url, connector=conn) as s:
                async def post(path: str, body: dict) -> dict:
                    async with s.post(path, json=body) as r:
                        out = await r.json()
                        if r.status >= 300:
                            raise RuntimeError(f"{path}: {r.status} {out}")
                        return out

                await post("/api/v1/namespaces", {"metadata": {"name": "bench", "labels": {"bench": "webhooks"}}})

                async def creates(case: str) -> None:
                    async def one(i: int) -> None:
                        await post("/api/v1/namespaces/bench/configmaps",
                                   {"metadata": {"name": f"{case}-{i}"}, "data": {"k": "v"}})
                    elapsed, lat = await run_pool(args.objects, args.concurrency, one)
                    results["cases"][case] = {"per_s": args.objects / elapsed, "p50_ms": pct(lat, 50) * 1e3,
                                              "p99_ms": pct(lat, 99) * 1e3}

                async def effective(probe_path: str, expect) -> None:
                    deadline = time.monotonic() + 15
                    while time.monotonic() < deadline:
                        async with s.post(probe_path, json={"metadata": {"name": "probe"}, "data": {"k": "v"}}) as r:
                            if expect(r.status, await r.json()):
                                return
                        await asyncio.sleep(0.05)
                    raise RuntimeError("configuration never took effect")

                probe = "/api/v1/namespaces/bench/configmaps?dryRun=All"
                await creates("warm-up")  # first writes pay for caches and JIT-less warm paths
                del results["cases"]["warm-up"]
                await creates("none")
                await post(f"{ADM}/validatingwebhookconfigurations",
                           {"metadata": {"name": "v"}, "webhooks": [_hook("v.bench.test", hooks.url("/allow"),
                                                                           hooks.pki.ca_bundle)]})
                await effective(probe, lambda st, o: len(hooks.requests_to("/allow")) > 0)
                await creates("validating")
                async with s.delete(f"{ADM}/validatingwebhookconfigurations/v"):
                    pass
                await post(f"{ADM}/mutatingwebhookconfigurations",
                           {"metadata": {"name": "m"}, "webhooks": [_hook("m.bench.test", hooks.url("/mutate"),
                                                                         hooks.pki.ca_bundle)]})
                await effective(probe, lambda st, o: "added" in (o.get("data") or {}))
                await creates("mutating")
                async with s.delete(f"{ADM}/mutatingwebhookconfigurations/m"):
                    pass
                await post(f"{ADM}/validatingadmissionpolicies", {"metadata": {"name": "p"}, "spec": {
                    "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                            "operations": ["CREATE"], "resources": ["configmaps"]}]},
                    "validations": [{"expression": "object.metadata.name != 'forbidden'"}]}})
                await post(f"{ADM}/validatingadmissionpolicybindings",
                           {"metadata": {"name": "p"}, "spec": {"policyName": "p", "validationActions": ["Deny"]}})

                async def policy_on() -> None:
                    deadline = time.monotonic() + 15
                    while time.monotonic() < deadline:
                        async with s.post(probe, json={"metadata": {"name": "forbidden"}}) as r:
                            if r.status == 422:
                                return
                        await asyncio.sleep(0.05)
                    raise RuntimeError("policy never took effect")

                await policy_on()
                await creates("policy")
                async with s.delete(f"{ADM}/validatingadmissionpolicybindings/p"):
                    pass
                await creates("none-again")
            results["server_rss_mib"] = rss_mib(srv.proc.pid)
        finally:
            hooks.stop()
            srv.stop()
    return results


def table(r: dict) -> str:
    lines = [f"ConfigMap creates, {r['objects']} per case, concurrency {r['concurrency']}",
             f"{'case':<12}{'creates/s':>12}{'p50 ms':>10}{'p99 ms':>10}"]
    for case, c in r["cases"].items():
        lines.append(f"{case:<12}{c['per_s']:>12.0f}{c['p50_ms']:>10.1f}{c['p99_ms']:>10.1f}")
    lines.append(f"server RSS after: {r['server_rss_mib']:.0f} MiB")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    r = asyncio.run(bench(args))
    print(table(r))
    write_result(HERE / "results" / "webhooks.json", r)


if __name__ == "__main__":
    main()
