"""Node IPAM's subnet arithmetic: node subnets of a cluster CIDR, round-robin, taken
subnets skipped, exhaustion, invalid configurations."""

from __future__ import annotations

import pytest

from kybernetes.controllers.nodeipam import CIDRExhausted, CIDRSet, CIDRSetError, cidr_sets, node_cidrs


def test_subnets_in_order_skipping_taken():
    s = CIDRSet("10.42.0.0/16", 24)
    assert s.size == 256
    assert str(s.allocate({0, 1})) == "10.42.2.0/24"
    assert str(s.allocate(set())) == "10.42.3.0/24"  # round-robin: after the last one handed out
    assert s.index("10.42.3.0/24") == 3
    assert s.index("10.42.255.0/24") == 255
    assert s.index("10.43.0.0/24") is None       # outside the cluster CIDR
    assert s.index("10.42.0.0/25") is None       # wrong size
    assert s.index("garbage") is None


def test_round_robin_wraps_and_exhausts():
    s = CIDRSet("10.0.0.0/30", 31)
    assert [str(s.allocate(set())), str(s.allocate(set()))] == ["10.0.0.0/31", "10.0.0.2/31"]
    assert str(s.allocate({1})) == "10.0.0.0/31"
    with pytest.raises(CIDRExhausted):
        s.allocate({0, 1})


def test_mask_size_validation():
    with pytest.raises(CIDRSetError):
        CIDRSet("10.42.0.0/16", 15)
    with pytest.raises(CIDRSetError, match="subnet mask size too big"):
        CIDRSet("10.0.0.0/8", 25)
    with pytest.raises(CIDRSetError):
        cidr_sets("10.42.0.1/16")  # host bits set
    with pytest.raises(CIDRSetError):
        cidr_sets("10.42.0.0/16,10.43.0.0/16")  # two of one family


def test_dual_stack_defaults():
    v4, v6 = cidr_sets("10.42.0.0/16, fd00:42::/56", 26)
    assert (v4.mask_size, v6.mask_size) == (26, 64)
    assert str(v6.allocate(set())) == "fd00:42::/64"
    assert str(v6.allocate(set())) == "fd00:42:0:1::/64"


def test_node_cidrs_reads_either_field():
    assert node_cidrs({"spec": {"podCIDRs": ["10.42.1.0/24"]}}) == ["10.42.1.0/24"]
    assert node_cidrs({"spec": {"podCIDR": "10.42.2.0/24"}}) == ["10.42.2.0/24"]
    assert node_cidrs({"spec": {}}) == []


def test_cluster_cidr_flag():
    import argparse

    from kybernetes.controllers.nodeipam import cluster_cidr_arg

    assert cluster_cidr_arg("10.99.0.0/29") == "10.99.0.0/29"
    assert cluster_cidr_arg("10.42.0.0/16,fd00::/48") == "10.42.0.0/16,fd00::/48"
    for bad in ("bogus", "10.42.0.1/16", "", "10.42.0.0/16,10.43.0.0/16"):
        with pytest.raises(argparse.ArgumentTypeError):
            cluster_cidr_arg(bad)
