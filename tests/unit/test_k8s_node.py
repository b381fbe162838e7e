"""The real node's layout as data: addresses that never collide, configs that agree with one
another, and the DNS probe's wire format."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from tests.fixtures.node import TEST_SITE, UP_SITE
from tests.support.k8s_components import SERVICE_CIDR
from tests.support.k8s_node import (
    CLUSTER_DNS_IP,
    LINK_NETWORK,
    POD_SUBNET,
    NodeFiles,
    NodeSite,
    cni_network,
    containerd_config,
    coredns_objects,
    dns_answer_addresses,
    dns_query,
    kube_router_access_objects,
    kube_router_command,
    kubelet_configuration,
)
from tests.support.k8s_pki import KUBE_ROUTER_USER

FILES = NodeFiles(Path("/tmp/node-root"))


def test_the_two_sites_have_distinct_names_links_and_interface_names_that_fit() -> None:
    assert TEST_SITE.name != UP_SITE.name
    assert {TEST_SITE.host_ip, TEST_SITE.node_ip}.isdisjoint({UP_SITE.host_ip, UP_SITE.node_ip})
    for site in (TEST_SITE, UP_SITE):
        assert len(site.host_interface) <= 15
        link = ipaddress.ip_network(f"{site.node_ip}/{site.prefix_length}", strict=False)
        assert ipaddress.ip_address(site.host_ip) in link
        assert link.subnet_of(LINK_NETWORK)  # type: ignore[arg-type]


def test_pod_service_and_link_ranges_do_not_overlap() -> None:
    ranges = [ipaddress.ip_network(r) for r in (POD_SUBNET, SERVICE_CIDR, LINK_NETWORK)]
    for i, a in enumerate(ranges):
        for b in ranges[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    assert ipaddress.ip_address(CLUSTER_DNS_IP) in ipaddress.ip_network(SERVICE_CIDR)


def test_containerd_and_kubelet_agree_on_socket_and_cgroup_driver() -> None:
    config = containerd_config(FILES, sandbox_image="docker.io/chatcluster/pause:1")
    kubelet = kubelet_configuration(TEST_SITE, FILES, Path("/pki"))
    assert f'address = "{FILES.containerd_socket}"' in config
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{FILES.containerd_socket}"
    assert "SystemdCgroup = false" in config
    assert kubelet["cgroupDriver"] == "cgroupfs"
    assert f'conf_dir = "{FILES.cni_config_dir}"' in config
    assert kubelet["imageGCHighThresholdPercent"] == 100  # nothing could be pulled back


def test_pods_are_not_masqueraded_and_addresses_stay_in_the_pod_subnet() -> None:
    bridge = cni_network(FILES)["plugins"][0]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_SUBNET, "gateway": "10.244.0.1"}]]


def test_coredns_service_is_at_the_kubelets_cluster_dns_address() -> None:
    service = next(o for o in coredns_objects("img") if o["kind"] == "Service")
    kubelet = kubelet_configuration(TEST_SITE, FILES, Path("/pki"))
    assert [service["spec"]["clusterIP"]] == kubelet["clusterDNS"]


def _response(query: bytes, *, rcode: int = 0, addresses: tuple[str, ...] = ()) -> bytes:
    header = query[:2] + bytes([0x81, 0x80 | rcode]) + b"\x00\x01"
    header += len(addresses).to_bytes(2, "big") + b"\x00\x00\x00\x00"
    answers = b"".join(
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04" + ipaddress.IPv4Address(a).packed
        for a in addresses
    )
    return header + query[12:] + answers


def test_dns_probe_reads_the_addresses_of_an_answer() -> None:
    query = dns_query("kubernetes.default.svc.cluster.local", query_id=0x1234)
    assert query[:2] == b"\x12\x34"
    assert b"\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00" in query
    response = _response(query, addresses=("10.96.0.1", "10.96.0.2"))
    assert dns_answer_addresses(response, query_id=0x1234) == ["10.96.0.1", "10.96.0.2"]


def test_dns_probe_reads_no_address_from_nxdomain_and_rejects_another_id() -> None:
    query = dns_query("nothing.cluster.local", query_id=7)
    assert dns_answer_addresses(_response(query, rcode=3), query_id=7) == []
    with pytest.raises(ValueError, match="not a response"):
        dns_answer_addresses(_response(query), query_id=8)


def test_site_paths_follow_its_name() -> None:
    assert NodeSite("abc", 3).cgroup_root == "/abc"
    assert NodeSite("abc", 3).netns_path == Path("/run/netns/abc")


def test_kube_router_only_enforces_policies_and_may_only_read() -> None:
    command = kube_router_command(Path("/bin-dir"), TEST_SITE, Path("/kube-router.kubeconfig"))
    assert {"--run-firewall=true", "--run-router=false", "--run-service-proxy=false"} <= set(
        command
    )
    assert f"--hostname-override={TEST_SITE.name}" in command
    assert f"--service-cluster-ip-range={SERVICE_CIDR}" in command
    role, binding = kube_router_access_objects()
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"get", "list", "watch"}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [KUBE_ROUTER_USER]
