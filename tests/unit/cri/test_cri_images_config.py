"""OCI writer, pause image build, containerd config rendering, clean-up helpers and
`kyb images` argument parsing (no containerd needed)."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.containerd import ContainerdError, ContainerdProcess, ExternalRuntime, agent_dir, container_runtime
from kybernetes.kubelet.images_oci import (
    ANN_CONTAINERD_NAME, MT_LAYER_GZIP, ImageBuilder, archive_references, write_docker_archive, write_oci_archive,
    write_oci_layout,
)
from kybernetes.kubelet.images_pause import PAUSE_IMAGE, build_pause_image
from kybernetes.kubelet.runtime_netns import bridge_conflist, write_conflist


def _image(marker: str = "x") -> ImageBuilder:
    b = ImageBuilder(cmd=["/bin/sh"], env={"A": "1"}, labels={"l": "v"}, working_dir="/w")
    b.add_file("/bin/tool", b"#!/bin/sh\necho hi\n", mode=0o755)
    b.add_symlink("/bin/sh", "tool")
    b.add_file("/etc/marker", marker)
    b.new_layer().add_file("/etc/second", "2")
    return b


def test_build_is_reproducible_and_consistent():
    a, b = _image().build(), _image().build()
    assert a.digest == b.digest and a.image_id == b.image_id
    assert _image("other").build().digest != a.digest
    cfg = json.loads(a.config.data)
    assert cfg["config"]["Cmd"] == ["/bin/sh"] and "A=1" in cfg["config"]["Env"]
    assert cfg["config"]["WorkingDir"] == "/w" and cfg["os"] == "linux"
    assert len(a.layers) == 2 and all(l.media_type == MT_LAYER_GZIP for l in a.layers)
    for layer, diff_id in zip(a.layers, a.diff_ids):
        raw = gzip.decompress(layer.data)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id
    raw = gzip.decompress(a.layers[0].data)
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        names = {m.name: m for m in t.getmembers()}
    assert names["bin/"].isdir() if "bin/" in names else names["bin"].isdir()
    assert names["bin/sh"].issym() and names["bin/sh"].linkname == "tool"
    assert names["bin/tool"].mode == 0o755 and names["bin/tool"].mtime == 0
    man = json.loads(a.manifest.data)
    assert man["config"]["digest"] == a.config.digest
    assert [l["digest"] for l in man["layers"]] == [l.digest for l in a.layers]


def test_archives_and_references(tmp_path):
    img = _image().build()
    ref = "localhost/t/x:1"
    oci = write_oci_archive(tmp_path / "x.tar", {ref: img})
    layout = write_oci_layout(tmp_path / "layout", {ref: img})
    docker = write_docker_archive(tmp_path / "d.tar", {ref: img})
    assert archive_references(oci) == archive_references(layout) == archive_references(docker) == [ref]
    idx = json.loads((layout / "index.json").read_text())
    entry = idx["manifests"][0]
    assert entry["annotations"][ANN_CONTAINERD_NAME] == ref
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1"
    assert entry["platform"]["os"] == "linux"
    for blob in img.blobs():
        p = layout / "blobs" / "sha256" / blob.digest.split(":")[1]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == blob.digest.split(":")[1]
    with tarfile.open(docker) as t:
        manifest = json.loads(t.extractfile("manifest.json").read())
    assert manifest[0]["RepoTags"] == [ref] and len(manifest[0]["Layers"]) == 2
    # same bytes twice
    assert write_oci_archive(tmp_path / "y.tar", {ref: img}).read_bytes() == oci.read_bytes()
    (tmp_path / "junk").mkdir()
    with pytest.raises(ValueError):
        archive_references(tmp_path / "junk")


def test_pause_image_build(tmp_path):
    archive = build_pause_image(tmp_path)
    assert archive_references(archive) == [PAUSE_IMAGE]
    assert build_pause_image(tmp_path) == archive  # cached
    assert PAUSE_IMAGE.startswith("localhost/")  # a pull could only ever go to this host
    with tarfile.open(archive) as t:
        index = json.loads(t.extractfile("index.json").read())
        man = json.loads(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]).read())
        layer = t.extractfile("blobs/sha256/" + man["layers"][0]["digest"].split(":")[1]).read()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as lt:
        pause = lt.getmember("pause")
        assert pause.mode == 0o755
        data = lt.extractfile(pause).read()
    assert data[:4] == b"\x7fELF"
    import struct
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    assert 3 not in types  # no PT_INTERP: static, runs in an empty rootfs


def test_containerd_config(tmp_path):
    rt = ContainerdProcess(tmp_path / "node", insecure_registries=["127.0.0.1:5000"],
                           registry_mirrors={"docker.io": ["http://127.0.0.1:5002"]},
                           registry_auths={"127.0.0.1:5001": {"username": "u", "password": "p"}}, offline=True)
    cfg = rt.render_config()
    for needle in ('version = 2', f'root = "{tmp_path}/node/containerd/root"',
                   f'state = "{tmp_path}/node/containerd/state"',
                   f'address = "{tmp_path}/node/containerd/containerd.sock"',
                   f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{tmp_path}/node/containerd/opt"',
                   f'sandbox_image = "{PAUSE_IMAGE}"', "restrict_oom_score_adj = true",
                   "netns_mounts_under_state_dir = true", 'bin_dir = "/usr/lib/cni"',
                   f'conf_dir = "{tmp_path}/node/cni/net.d"', f'Root = "{tmp_path}/node/containerd/runc"',
                   f'config_path = "{tmp_path}/node/containerd/certs.d"', 'stream_server_address = "127.0.0.1"',
                   '[metrics]\n  address = ""', '.registry.configs."127.0.0.1:5001".auth]\n  username = "u"'):
        assert needle in cfg, needle
    assert "/etc/" not in cfg and '"/opt' not in cfg and "/run/" not in cfg
    hosts = rt.registry_hosts()
    assert 'server = "http://127.0.0.1:5000"' in hosts["127.0.0.1:5000"] and "skip_verify = true" in hosts["127.0.0.1:5000"]
    assert 'server = "http://127.0.0.1:9"' in hosts["docker.io"] and '[host."http://127.0.0.1:5002"]' in hosts["docker.io"]
    rt.write_config()
    assert (rt.certs_dir / "127.0.0.1_5000_" / "hosts.toml").exists()
    assert (rt.certs_dir / "docker.io" / "hosts.toml").exists()
    assert rt.config_path.stat().st_mode & 0o077 == 0
    plain = ContainerdProcess(tmp_path / "p")
    assert "docker.io" not in plain.registry_hosts()
    with pytest.raises(ContainerdError, match="longer than"):
        ContainerdProcess(tmp_path / ("d" * 110)).write_config()


def test_runtime_choice(tmp_path):
    assert isinstance(container_runtime(tmp_path, "unix:///run/x.sock"), ExternalRuntime)
    rt = container_runtime(tmp_path)
    assert isinstance(rt, ContainerdProcess) and rt.endpoint == f"unix://{tmp_path}/containerd/containerd.sock"
    assert agent_dir(tmp_path) == tmp_path / "agent"


def test_conflist(tmp_path):
    c = bridge_conflist("n", "br0", "10.1.2.0/24", ipam_dir=tmp_path / "ipam")
    assert c["plugins"][0]["ipam"]["routes"] == []  # no default route for pods
    assert c["plugins"][0]["ipam"]["dataDir"] == str(tmp_path / "ipam")
    p = write_conflist(tmp_path / "net.d", c)
    assert json.loads(p.read_text()) == c and not list((tmp_path / "net.d").glob(".*"))


def test_cleanup_helpers(tmp_path):
    assert cleanup._unescape(r"/a\040b\134c") == "/a b\\c"
    assert cleanup.mounts_under(tmp_path) == []
    assert cleanup.unmount_under(tmp_path) == 0
    assert cleanup.shim_pids(str(tmp_path / "none.sock")) == []
    assert cleanup.cgroup_dirs("kyb-no-such-cgroup-xyz") == []
    assert cleanup.remove_cgroup("kyb-no-such-cgroup-xyz") == []
    assert cleanup.alive(1) and not cleanup.alive(2 ** 22 + 12345)


def test_images_cli_arguments():
    from kybernetes.cli import images

    p = argparse.ArgumentParser()
    images.add_arguments(p)
    a = p.parse_args(["import", "x.tar", "--data-dir", "/d"])
    assert a.images_command == "import" and a.archives == [Path("x.tar")] and a.data_dir == Path("/d")
    a = p.parse_args(["--container-runtime-endpoint", "unix:///s", "list"])
    assert a.container_runtime_endpoint == "unix:///s" and a.data_dir is None
    a = p.parse_args(["ls"])
    assert a.images_command == "ls"
