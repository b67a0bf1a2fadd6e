"""Import image archives into containerd (the CRI's `k8s.io` namespace) with `ctr`.

Takes an OCI archive (tar of an OCI layout), an OCI layout directory, or a docker
archive (`docker save`).  Images are unpacked for the overlayfs snapshotter so the
CRI can run them at once.  This is how the pause image and air-gapped images get
into the runtime; `kyb images import` is the command-line face of it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Optional, Union

from kybernetes.kubelet.images_oci import archive_references

CRI_NAMESPACE = "k8s.io"


class ImageImportError(RuntimeError):
    pass


def _tar_layout(layout: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tar:
        for p in sorted(layout.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    return dest


def import_archive_sync(address: str, archive: Union[str, Path], *, namespace: str = CRI_NAMESPACE,
                        ctr: str = "ctr", timeout: float = 600.0, snapshotter: str = "") -> list[str]:
    """Import `archive` into the containerd at `address`; returns the image names
    containerd reports (as normalized by it, e.g. docker.io/library/x:1)."""
    address = address[len("unix://"):] if address.startswith("unix://") else address
    archive = Path(archive)
    if not archive.exists():
        raise ImageImportError(f"{archive}: no such file or directory")
    exe = shutil.which(ctr)
    if exe is None:
        raise ImageImportError(f"{ctr!r} not found: it ships with containerd (Debian package containerd)")
    try:
        expected = archive_references(archive)
    except (ValueError, tarfile.TarError, OSError) as e:
        raise ImageImportError(f"{archive}: not an image archive: {e}") from None
    with tempfile.TemporaryDirectory(prefix="kyb-import-") as tmp:
        src = archive
        if archive.is_dir():
            src = _tar_layout(archive, Path(tmp, "layout.tar"))
        cmd = [exe, "--address", address, "--namespace", namespace, "images", "import"]
        if snapshotter:
            cmd += ["--snapshotter", snapshotter]
        cmd.append(str(src))
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "LC_ALL": "C"})
        except subprocess.TimeoutExpired:
            raise ImageImportError(f"importing {archive} timed out after {timeout:.0f}s") from None
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip()
        raise ImageImportError(f"importing {archive} into {address} failed: {msg}")
    names = re.findall(r"^unpacking (\S+) \(", r.stdout, flags=re.M)
    return names or expected


async def import_archive(address: str, archive: Union[str, Path], **kw) -> list[str]:
    """Async wrapper of import_archive_sync (runs ctr in a worker thread)."""
    return await asyncio.to_thread(import_archive_sync, address, archive, **kw)


def is_image_archive(path: Path) -> bool:
    if path.is_dir():
        return (path / "index.json").exists() or (path / "manifest.json").exists()
    return path.is_file() and (path.name.endswith(".tar") or path.suffix in (".oci", ".docker"))


def pending_archives(directory: Union[str, Path], done: Optional[dict] = None) -> list[Path]:
    """Archives in `directory` not imported yet according to `done` ({name: "size:mtime"})."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    done = done or {}
    out = []
    for p in sorted(directory.iterdir()):
        if p.name.startswith(".") or not is_image_archive(p):
            continue
        st = p.stat()
        if done.get(p.name) != f"{st.st_size}:{int(st.st_mtime)}":
            out.append(p)
    return out
