"""Kubelet flags of `kyb agent`/`kyb server`: image GC policy, static pod directory, eviction."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kybernetes.cli import agent


def parse(*argv):
    p = argparse.ArgumentParser()
    agent.add_arguments(p)
    return agent.kubelet_options(p.parse_args(list(argv)))


def test_defaults_are_upstream_ones():
    opts = parse()
    pol = opts["image_gc_policy"]
    assert (pol.high_threshold, pol.low_threshold, pol.min_age) == (85, 80, 120.0)
    assert "static_pod_path" not in opts


def test_flags():
    opts = parse("--image-gc-high-threshold", "90", "--image-gc-low-threshold", "70", "--image-minimum-gc-age", "1m30s",
                 "--pod-manifest-path", "/etc/kyb/manifests", "--file-check-frequency", "500ms")
    pol = opts["image_gc_policy"]
    assert (pol.high_threshold, pol.low_threshold, pol.min_age) == (90, 70, 90.0)
    assert opts["static_pod_path"] == Path("/etc/kyb/manifests") and opts["file_check_frequency"] == 0.5


def test_bad_thresholds():
    with pytest.raises(ValueError, match="LowThresholdPercent 95 can not be higher than HighThresholdPercent 85"):
        parse("--image-gc-low-threshold", "95")


def test_eviction_flags():
    opts = parse()
    assert [str(t) for t in opts["eviction_hard"]] == ["memory.available<100Mi", "nodefs.available<10%",
                                                       "nodefs.inodesFree<5%", "imagefs.available<15%",
                                                       "imagefs.inodesFree<5%"]
    assert opts["eviction_pressure_transition_period"] == 300.0
    opts = parse("--eviction-hard", "memory.available<1Gi", "--eviction-pressure-transition-period", "30s")
    assert [str(t) for t in opts["eviction_hard"]] == ["memory.available<1Gi"]
    assert opts["eviction_pressure_transition_period"] == 30.0
    assert parse("--eviction-hard", "")["eviction_hard"] == []
    with pytest.raises(ValueError, match="--eviction-hard: unsupported eviction signal cpu"):
        parse("--eviction-hard", "cpu<1")
