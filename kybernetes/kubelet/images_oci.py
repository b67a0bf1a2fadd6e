"""A small OCI image writer: layers from files, config, manifest, index.

Writes an OCI image layout (directory), an OCI archive (the layout as a tar, what
`ctr images import` and `kyb images import` take) or a docker archive (`docker
save` format).  Output is reproducible: fixed mtimes and owners, sorted entries,
gzip without timestamps — the same inputs give the same digests.

    img = ImageBuilder(entrypoint=["/pause"])
    img.add_file("/pause", data, mode=0o755)
    built = img.build()
    write_oci_archive(path, {"localhost/kybernetes/pause:3.10": built})
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Union

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# Annotations on index entries: the full reference (containerd reads it on import)
# and the OCI short tag.
ANN_CONTAINERD_NAME = "io.containerd.image.name"
ANN_REF_NAME = "org.opencontainers.image.ref.name"

EPOCH = 0  # mtime of every file in every layer


def host_arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class _Entry:
    path: str            # relative, no leading slash
    kind: str            # file | dir | symlink | hardlink
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    uid: int = 0
    gid: int = 0


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self, **extra: object) -> dict:
        d = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        d.update(extra)
        return d


@dataclass
class BuiltImage:
    """An image ready to write: its manifest, config and layer blobs."""

    manifest: Blob
    config: Blob
    layers: list[Blob]
    diff_ids: list[str]
    platform: dict

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def image_id(self) -> str:
        """The image ID as containerd's CRI reports it (the config digest)."""
        return self.config.digest

    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers, self.manifest]


class ImageBuilder:
    """Collect files into layers, then build() an image.

    Paths are absolute in-image paths; parent directories are added automatically.
    new_layer() starts another layer (all content goes into one layer by default).
    """

    def __init__(self, *, entrypoint: Optional[list[str]] = None, cmd: Optional[list[str]] = None,
                 env: Optional[Mapping[str, str]] = None, working_dir: str = "", user: str = "",
                 labels: Optional[Mapping[str, str]] = None, exposed_ports: Iterable[str] = (),
                 stop_signal: str = "", architecture: Optional[str] = None, os_name: str = "linux",
                 compress: bool = True):
        self.entrypoint = list(entrypoint or [])
        self.cmd = list(cmd or [])
        self.env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **dict(env or {})}
        self.working_dir = working_dir
        self.user = user
        self.labels = dict(labels or {})
        self.exposed_ports = list(exposed_ports)
        self.stop_signal = stop_signal
        self.architecture = architecture or host_arch()
        self.os_name = os_name
        self.compress = compress
        self._layers: list[dict[str, _Entry]] = [{}]

    # -- content
    def new_layer(self) -> "ImageBuilder":
        self._layers.append({})
        return self

    def _put(self, e: _Entry) -> None:
        layer = self._layers[-1]
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent and parent not in layer:
                layer[parent] = _Entry(parent, "dir", mode=0o755)
        layer[e.path] = e

    @staticmethod
    def _rel(path: str) -> str:
        p = os.path.normpath("/" + path).lstrip("/")
        if not p or p == ".":
            raise ValueError(f"invalid image path {path!r}")
        return p

    def add_file(self, path: str, data: Union[bytes, str], mode: int = 0o644, uid: int = 0, gid: int = 0) -> "ImageBuilder":
        if isinstance(data, str):
            data = data.encode()
        self._put(_Entry(self._rel(path), "file", data=data, mode=mode, uid=uid, gid=gid))
        return self

    def add_host_file(self, path: str, host_path: Union[str, Path], mode: Optional[int] = None) -> "ImageBuilder":
        hp = Path(host_path)
        return self.add_file(path, hp.read_bytes(), mode=(hp.stat().st_mode & 0o7777) if mode is None else mode)

    def add_dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> "ImageBuilder":
        self._put(_Entry(self._rel(path), "dir", mode=mode, uid=uid, gid=gid))
        return self

    def add_symlink(self, path: str, target: str) -> "ImageBuilder":
        self._put(_Entry(self._rel(path), "symlink", target=target, mode=0o777))
        return self

    def add_hardlink(self, path: str, target: str) -> "ImageBuilder":
        """A hard link to `target` (an absolute in-image path already in this layer)."""
        self._put(_Entry(self._rel(path), "hardlink", target=self._rel(target)))
        return self

    # -- build
    @staticmethod
    def _layer_tar(entries: Mapping[str, _Entry]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(entries):
                e = entries[name]
                ti = tarfile.TarInfo(e.path + ("/" if e.kind == "dir" else ""))
                ti.mtime = EPOCH
                ti.mode = e.mode
                ti.uid, ti.gid = e.uid, e.gid
                ti.uname = ti.gname = ""
                if e.kind == "file":
                    ti.type = tarfile.REGTYPE
                    ti.size = len(e.data)
                    tar.addfile(ti, io.BytesIO(e.data))
                    continue
                if e.kind == "dir":
                    ti.type = tarfile.DIRTYPE
                elif e.kind == "symlink":
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = e.target
                elif e.kind == "hardlink":
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = e.target
                tar.addfile(ti)
        return buf.getvalue()

    def build(self) -> BuiltImage:
        layers: list[Blob] = []
        diff_ids: list[str] = []
        for entries in self._layers:
            raw = self._layer_tar(entries)
            diff_ids.append(sha256_digest(raw))
            if self.compress:
                layers.append(Blob(MT_LAYER_GZIP, gzip.compress(raw, compresslevel=6, mtime=0)))
            else:
                layers.append(Blob(MT_LAYER, raw))
        cfg: dict = {"Env": [f"{k}={v}" for k, v in self.env.items()]}
        if self.entrypoint:
            cfg["Entrypoint"] = self.entrypoint
        if self.cmd:
            cfg["Cmd"] = self.cmd
        if self.working_dir:
            cfg["WorkingDir"] = self.working_dir
        if self.user:
            cfg["User"] = self.user
        if self.labels:
            cfg["Labels"] = dict(sorted(self.labels.items()))
        if self.exposed_ports:
            cfg["ExposedPorts"] = {p: {} for p in sorted(self.exposed_ports)}
        if self.stop_signal:
            cfg["StopSignal"] = self.stop_signal
        config = {
            "created": "1970-01-01T00:00:00Z",
            "architecture": self.architecture,
            "os": self.os_name,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kybernetes ImageBuilder"}
                        for _ in layers],
        }
        config_blob = Blob(MT_CONFIG, _canonical(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": config_blob.descriptor(),
            "layers": [b.descriptor() for b in layers],
        }
        return BuiltImage(Blob(MT_MANIFEST, _canonical(manifest)), config_blob, layers, diff_ids,
                          {"architecture": self.architecture, "os": self.os_name})


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _short_tag(ref: str) -> str:
    """`host:5000/a/b:tag` -> `tag` (the OCI ref.name annotation); digests map to ``."""
    last = ref.rsplit("/", 1)[-1]
    if "@" in last:
        return ""
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def _layout_files(images: Mapping[str, BuiltImage]) -> dict[str, bytes]:
    files: dict[str, bytes] = {"oci-layout": _canonical({"imageLayoutVersion": "1.0.0"})}
    manifests = []
    for ref, img in images.items():
        for b in img.blobs():
            files["blobs/sha256/" + b.digest.split(":", 1)[1]] = b.data
        ann = {ANN_CONTAINERD_NAME: ref}
        tag = _short_tag(ref)
        if tag:
            ann[ANN_REF_NAME] = tag
        manifests.append(img.manifest.descriptor(annotations=ann, platform=dict(img.platform)))
    files["index.json"] = _canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests})
    return files


def write_oci_layout(dest: Union[str, Path], images: Mapping[str, BuiltImage]) -> Path:
    """Write an OCI image layout directory holding `images` ({reference: image})."""
    dest = Path(dest)
    for name, data in _layout_files(images).items():
        p = dest / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return dest


def _write_tar(dest: Path, files: Mapping[str, bytes]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(n).parent) for n in files if "/" in n})
        for d in dirs:
            parts = d.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in tar.getnames():
                    ti = tarfile.TarInfo(sub + "/")
                    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, EPOCH
                    tar.addfile(ti)
        for name in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(files[name]), 0o644, EPOCH
            tar.addfile(ti, io.BytesIO(files[name]))
    os.replace(tmp, dest)
    return dest


def write_oci_archive(dest: Union[str, Path], images: Mapping[str, BuiltImage]) -> Path:
    """Write the OCI layout of `images` as one tar file (atomically)."""
    return _write_tar(Path(dest), _layout_files(images))


def write_docker_archive(dest: Union[str, Path], images: Mapping[str, BuiltImage]) -> Path:
    """Write `images` in `docker save` format (manifest.json, config, layer tars)."""
    files: dict[str, bytes] = {}
    manifest = []
    for ref, img in images.items():
        cfg_name = img.config.digest.split(":", 1)[1] + ".json"
        files[cfg_name] = img.config.data
        layer_names = []
        for blob, diff_id in zip(img.layers, img.diff_ids):
            name = diff_id.split(":", 1)[1] + "/layer.tar"
            data = gzip.decompress(blob.data) if blob.media_type == MT_LAYER_GZIP else blob.data
            files[name] = data
            layer_names.append(name)
        manifest.append({"Config": cfg_name, "RepoTags": [ref], "Layers": layer_names})
    files["manifest.json"] = _canonical(manifest)
    return _write_tar(Path(dest), files)


def archive_references(path: Union[str, Path]) -> list[str]:
    """The image references an OCI layout (dir or tar) or docker archive names."""
    path = Path(path)
    if path.is_dir():
        idx = path / "index.json"
        if idx.exists():
            return _index_refs(json.loads(idx.read_bytes()))
        man = path / "manifest.json"
        if man.exists():
            return [t for m in json.loads(man.read_bytes()) for t in (m.get("RepoTags") or [])]
        raise ValueError(f"{path}: neither an OCI layout (index.json) nor a docker archive (manifest.json)")
    with tarfile.open(path) as tar:
        names = {n.lstrip("./"): n for n in tar.getnames()}
        if "index.json" in names:
            f = tar.extractfile(names["index.json"])
            return _index_refs(json.loads(f.read())) if f else []
        if "manifest.json" in names:
            f = tar.extractfile(names["manifest.json"])
            return [t for m in json.loads(f.read()) for t in (m.get("RepoTags") or [])] if f else []
    raise ValueError(f"{path}: neither an OCI archive (index.json) nor a docker archive (manifest.json)")


def _index_refs(index: dict) -> list[str]:
    out = []
    for m in index.get("manifests", []):
        ann = m.get("annotations") or {}
        ref = ann.get(ANN_CONTAINERD_NAME) or ann.get(ANN_REF_NAME)
        if ref:
            out.append(ref)
    return out
