"""`kyb images`: images in the node's containerd (CRI namespace k8s.io).

    kyb images import ARCHIVE...   OCI archive (tar), OCI layout directory or docker archive
    kyb images list

By default they act on the containerd that `kyb server`/`kyb agent` run for
--data-dir (socket DATA_DIR/agent/containerd/containerd.sock), or on
--container-runtime-endpoint.  When that containerd is not running, `import`
stages the archive in DATA_DIR/agent/images/, which is imported at the next start
(air-gapped installs); --stage always does that.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path
from typing import Optional


def _common(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--data-dir", type=Path, default=default,
                   help="kyb state directory (default ~/.kyb, or /var/lib/kybernetes as root; env KYB_DATA_DIR)")
    p.add_argument("--container-runtime-endpoint", default=default,
                   help="CRI socket of a containerd to use instead of the one kyb runs (unix:///path)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common(p, None)
    # The same options are accepted after the subcommand too (`kyb images import X --data-dir D`).
    common = argparse.ArgumentParser(add_help=False)
    _common(common, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="images_command", required=True)
    imp = sub.add_parser("import", parents=[common],
                         help="import image archives (OCI archive/layout or docker archive)")
    imp.add_argument("archives", nargs="+", type=Path, metavar="ARCHIVE")
    imp.add_argument("--stage", action="store_true",
                     help="only copy into DATA_DIR/agent/images/ for import at the next start")
    sub.add_parser("list", aliases=["ls"], parents=[common], help="list images the CRI sees")


def _paths(args: argparse.Namespace) -> tuple[str, Path]:
    from kybernetes.cli.server import default_data_dir
    from kybernetes.kubelet.containerd import ContainerdProcess, agent_dir

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    node = ContainerdProcess(agent_dir(data_dir))
    endpoint = args.container_runtime_endpoint or node.endpoint
    return endpoint, node.import_dir


async def _running(endpoint: str) -> Optional[str]:
    from kybernetes.cri import CRIClient, CRIError

    try:
        async with CRIClient(endpoint, timeout=5.0) as cri:
            return (await cri.version()).runtime_version
    except CRIError:
        return None


def _stage(archive: Path, import_dir: Path) -> Path:
    import_dir.mkdir(parents=True, exist_ok=True)
    dest = import_dir / archive.name
    if archive.is_dir():
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(archive, dest)
    else:
        tmp = import_dir / f".{archive.name}.tmp"
        shutil.copyfile(archive, tmp)
        tmp.replace(dest)
    return dest


async def _import(args: argparse.Namespace) -> int:
    from kybernetes.cri import socket_path
    from kybernetes.kubelet.images_airgap import record_airgap_images
    from kybernetes.kubelet.images_import import ImageImportError, import_archive
    from kybernetes.kubelet.images_oci import archive_references

    endpoint, import_dir = _paths(args)
    for a in args.archives:
        if not a.exists():
            print(f"kyb images import: {a}: no such file or directory", file=sys.stderr)
            return 1
        try:
            archive_references(a)
        except Exception as e:
            print(f"kyb images import: {a}: not an image archive ({e})", file=sys.stderr)
            return 1
    version = None if args.stage else await _running(endpoint)
    if version is None:
        if args.container_runtime_endpoint and not args.stage:
            print(f"kyb images import: no container runtime answers at {endpoint}", file=sys.stderr)
            return 1
        for a in args.archives:
            dest = _stage(a, import_dir)
            print(f"staged {a} as {dest}; imported when the node agent starts")
        return 0
    rc = 0
    for a in args.archives:
        try:
            names = await import_archive(socket_path(endpoint), a)
        except ImageImportError as e:
            print(f"kyb images import: {e}", file=sys.stderr)
            rc = 1
            continue
        # air-gapped images are never garbage collected (images_airgap)
        record_airgap_images(import_dir, names)
        for n in names:
            print(f"imported {n}")
    return rc


async def _list(args: argparse.Namespace) -> int:
    from kybernetes.cri import CRIClient, CRIError

    endpoint, _ = _paths(args)
    try:
        async with CRIClient(endpoint, timeout=10.0) as cri:
            images = await cri.list_images()
    except CRIError as e:
        print(f"kyb images list: {e}", file=sys.stderr)
        return 1
    rows = [("IMAGE", "IMAGE ID", "SIZE")]
    for img in sorted(images, key=lambda i: (list(i.repo_tags) or list(i.repo_digests) or [i.id])[0]):
        names = list(img.repo_tags) or [d.split("@")[0] + "@<none>" for d in img.repo_digests] or ["<none>"]
        for n in names:
            rows.append((n, img.id.split(":")[-1][:13], _size(img.size)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)


def run(args: argparse.Namespace) -> int:
    if args.images_command == "import":  # "list" and "ls" otherwise
        return asyncio.run(_import(args))
    return asyncio.run(_list(args))


def main(argv: Optional[list[str]] = None) -> int:
    """Stand-alone entry (python -m kybernetes.cli.images ...), same as `kyb images ...`."""
    p = argparse.ArgumentParser(prog="kyb images")
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
