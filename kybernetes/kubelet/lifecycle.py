"""Container lifecycle hooks (postStart, preStop): exec through CRI ExecSync, httpGet to the
pod from inside its network namespace, or sleep — upstream's handler runner."""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from kybernetes.cri import CRIError
from kybernetes.kubelet.prober.probes import ProbeResult, http_probe

Obj = dict[str, Any]
# upstream: whatever remains of the grace period after preStop, never below 2 s
MIN_GRACE_SECONDS = 2


async def run_hook(handler: Obj, container: Obj, *, cri, cid: str, pod_ip: str, netns: Optional[str],
                   timeout: Optional[float] = None) -> Optional[str]:
    """Run one hook handler; None on success, else upstream-style failure text."""
    try:
        return await asyncio.wait_for(_run(handler, container, cri, cid, pod_ip, netns, timeout), timeout)
    except asyncio.TimeoutError:
        return f"hook did not complete within {timeout:g}s" if timeout else "hook timed out"


async def _run(handler: Obj, container: Obj, cri, cid: str, pod_ip: str, netns: Optional[str],
               timeout: Optional[float]) -> Optional[str]:
    if handler.get("exec") is not None:
        cmd = list(handler["exec"].get("command") or [])
        try:
            r = await cri.exec_sync(cid, cmd, timeout=int(timeout or 0))
        except CRIError as e:
            return f"Exec lifecycle hook ({cmd}) for Container {container['name']!r} failed - error: {e}"
        if r.exit_code != 0:
            out = (r.stdout + r.stderr).decode(errors="replace")
            return (f"Exec lifecycle hook ({cmd}) for Container {container['name']!r} failed - error: "
                    f"command '{' '.join(cmd)}' exited with {r.exit_code}: {out}, message: {out!r}")
        return None
    if handler.get("httpGet") is not None:
        res, msg = await http_probe(handler["httpGet"], container, pod_ip, netns, timeout or 30)
        if res is ProbeResult.FAILURE:
            return f"HTTP lifecycle hook ({handler['httpGet'].get('path') or '/'}) for Container " \
                   f"{container['name']!r} failed - error: {msg}"
        return None
    if handler.get("sleep") is not None:
        await asyncio.sleep(int(handler["sleep"].get("seconds") or 0))
        return None
    if handler.get("tcpSocket") is not None:
        return None  # deprecated and never run by upstream
    return "unknown lifecycle handler"
