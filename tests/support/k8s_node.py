"""What a real Kubernetes node on this machine runs, as data: its network, files, configs and
command lines, and the cluster DNS it serves (pure; `tests.fixtures.node` does the I/O).

The whole cluster lives in one network namespace that the run creates (the *node namespace*):
etcd, the control plane, containerd, the kubelet, kube-proxy and kube-router (which enforces
NetworkPolicy with iptables and ipsets, nothing else). The pods get namespaces of their
own, bridged to the node namespace on `cni0`. The only way in from this machine is a veth pair
with a /30 on it, so the tests reach the apiserver at the node's address; the node namespace has
no default route and drops anything the pods send out of that veth, so nothing a pod does ever
leaves it. Every iptables rule and ipset that kube-proxy, kube-router and the CNI plugins write is
in the node namespace and disappears with it.

The node's processes also share one private mount namespace: every overlay, tmpfs and pod network
namespace mount they make stays in it and is gone when they are, whatever happened to the run.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.k8s_components import SERVICE_CIDR
from tests.support.k8s_pki import KUBE_ROUTER_USER

POD_SUBNET = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
CLUSTER_DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
APISERVER_PORT = 6443
KUBELET_PORT = 10250
BRIDGE = "cni0"
NODE_INTERFACE = "eth0"
# The veth pairs of the nodes on this machine take /30s from here; a node's index picks its own.
LINK_NETWORK = ipaddress.ip_network("10.250.0.0/24")

COREDNS_PORT = 1053
"""Unprivileged, so CoreDNS needs no capability; the Service maps 53 to it."""

# The kernel settings the kubelet insists on (it writes them at start unless
# protectKernelDefaults); `tests.fixtures.node` records them before and writes them back after.
KUBELET_KERNEL_SETTINGS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)

# Inside the node namespace (each namespace has its own copy of these).
NODE_NAMESPACE_SETTINGS = {
    # Pod -> Service -> pod is routed through the node namespace.
    "net/ipv4/ip_forward": "1",
    # Replies between pods on the bridge must pass conntrack to undo a Service's DNAT.
    "net/bridge/bridge-nf-call-iptables": "1",
}


@dataclass(frozen=True)
class NodeSite:
    """Where one node lives on this machine. Two can coexist (`make cluster-up NODE=real` and a
    test run): each has its own namespaces, veth, link addresses and cgroup root."""

    name: str
    """Node name, network namespace and cgroup root (at most 13 characters: the host-side veth
    is `<name>-h`, and interface names have 15)."""
    index: int
    """Which /30 of LINK_NETWORK is its link to this machine."""

    @property
    def host_interface(self) -> str:
        return f"{self.name}-h"

    @property
    def _link(self) -> ipaddress.IPv4Network:
        return list(LINK_NETWORK.subnets(new_prefix=30))[self.index]  # type: ignore[return-value]

    @property
    def host_ip(self) -> str:
        return str(self._link[1])

    @property
    def node_ip(self) -> str:
        """The node's InternalIP, the apiserver's address, and the kubelet's."""
        return str(self._link[2])

    @property
    def prefix_length(self) -> int:
        return self._link.prefixlen

    @property
    def netns_path(self) -> Path:
        """Where `ip netns add` pins the node namespace."""
        return Path("/run/netns") / self.name

    @property
    def cgroup_root(self) -> str:
        """The kubelet's cgroupRoot: every pod's cgroup is below it, in every hierarchy."""
        return f"/{self.name}"

    @property
    def apiserver_url(self) -> str:
        return f"https://{self.node_ip}:{APISERVER_PORT}"


MOUNT_NAMESPACES = Path("/run/chatcluster")
"""Where the node mount namespaces are pinned (a private bind mount, as `unshare` requires)."""


def mount_namespace_path(site: NodeSite) -> Path:
    return MOUNT_NAMESPACES / f"{site.name}.mnt"


def enter_node(site: NodeSite) -> list[str]:
    """The command prefix that runs a program inside the node's network and mount namespaces.

    nsenter enters and execs in place (it forks only for PID namespaces), so the program keeps
    the pid, process group and death signal it was started with."""
    return ["nsenter", f"--net={site.netns_path}", f"--mount={mount_namespace_path(site)}", "--"]


@dataclass(frozen=True)
class NodeFiles:
    """The node's files, all under `root` (removed with it)."""

    root: Path

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd-state"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_state / "containerd.sock"

    @property
    def cni_config_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def kernel_settings(self) -> Path:
        """The host's kernel settings from before the kubelet changed them (JSON)."""
        return self.root / "kernel-settings.json"


def containerd_config(files: NodeFiles, *, sandbox_image: str) -> str:
    """containerd 1.6 (Debian's): private root, state and socket; the CRI plugin with runc on
    cgroupfs (this machine has cgroup v1 and no systemd to delegate to) and Debian's CNI
    plugins; nothing it could pull (no registry answers), so the sandbox image is ours."""
    return f"""version = 2
root = "{files.containerd_root}"
state = "{files.containerd_state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{files.containerd_socket}"

[ttrpc]
  address = "{files.containerd_state / "containerd.sock.ttrpc"}"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{files.root / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  enable_selinux = false
  # This machine withholds CAP_SYS_RESOURCE even from root, so no process may lower its OOM score
  # below its parent's; the kubelet asks -998 for sandboxes, which would fail every pod.
  restrict_oom_score_adj = true
  # Pod network namespaces are pinned under the node's own state, not in this machine's
  # /run/netns: they go with the node's files.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{files.cni_config_dir}"
  max_conf_num = 1
"""


def cni_network(files: NodeFiles) -> dict[str, Any]:
    """One bridge for every pod, addresses from host-local (its records under the node's files),
    hairpin so a pod reaches itself through its Service, portmap for hostPort. No masquerade:
    nothing is routed off the node namespace, so there is nothing to hide the pods behind."""
    return {
        "cniVersion": "1.0.0",
        "name": "chatcluster-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(files.cni_ipam_dir),
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def containerd_command(files: NodeFiles) -> list[str]:
    return ["/usr/bin/containerd", f"--config={files.containerd_config}"]


def kubelet_configuration(site: NodeSite, files: NodeFiles, pki_dir: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": site.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": str(pki_dir / "kubelet.crt"),
        "tlsPrivateKeyFile": str(pki_dir / "kubelet.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki_dir / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{files.containerd_socket}",
        # Debian's containerd 1.6 cannot tell the kubelet its cgroup driver; both say cgroupfs.
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": site.cgroup_root,
        # This machine's kernel mounts cgroup v1; Kubernetes 1.35 stops accepting that by default.
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [CLUSTER_DNS_IP],
        # No resolver of this machine is copied into pods: outside names have nowhere to go.
        "resolvConf": "",
        # Nothing can be pulled back: an image removed by garbage collection is lost for good.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A test machine's disk may be nearly full; evicting pods for it would only confuse.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "podLogsDir": str(files.pod_logs),
        "serializeImagePulls": False,
        "maxPods": 110,
        "rotateCertificates": False,
        "registerNode": True,
        "enableServer": True,
        # Sooner than the default 10 s, so a test sees a pod's new state without waiting.
        "nodeStatusUpdateFrequency": "5s",
    }


def kubelet_command(bin_dir: Path, site: NodeSite, files: NodeFiles, kubeconfig: Path) -> list[str]:
    return [
        str(bin_dir / "kubelet"),
        f"--config={files.kubelet_config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={files.kubelet_root}",
        f"--hostname-override={site.name}",
        f"--node-ip={site.node_ip}",
        "--v=1",
    ]


def kube_proxy_configuration(site: NodeSite, kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clusterCIDR": POD_SUBNET,
        "hostnameOverride": site.name,
        "bindAddress": site.node_ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        # 0: leave this machine's conntrack table size and timeouts as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def kube_proxy_command(bin_dir: Path, files: NodeFiles) -> list[str]:
    return [str(bin_dir / "kube-proxy"), f"--config={files.kube_proxy_config}", "--v=1"]


def kube_router_command(bin_dir: Path, site: NodeSite, kubeconfig: Path) -> list[str]:
    """kube-router as the node's NetworkPolicy engine only: pod routes are the bridge's and
    Services are kube-proxy's, so its router and service proxy stay off."""
    return [
        str(bin_dir / "kube-router"),
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={site.name}",
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--enable-cni=false",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--v=1",
    ]


def kube_router_access_objects() -> list[dict[str, Any]]:
    """What kube-router reads (and nothing it may change): the policies, the pods and namespaces
    they select, its own Node for the node's address, and the Services and endpoints that its
    informers wait for before the firewall starts."""
    name = "chatcluster-test:kube-router"
    read = ["get", "list", "watch"]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "pods", "namespaces", "services", "endpoints"],
                    "verbs": read,
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["networkpolicies"],
                    "verbs": read,
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KUBE_ROUTER_USER}
            ],
        },
    ]


def node_namespace_firewall(site: NodeSite) -> list[list[str]]:
    """iptables commands (run in the node namespace): whatever a pod sends towards this machine
    is dropped, so the link to it only ever carries the tests' own connections."""
    return [
        ["iptables", "-w", "-I", "FORWARD", "-o", NODE_INTERFACE, "-j", "DROP"],
        ["iptables", "-w", "-I", "FORWARD", "-i", NODE_INTERFACE, "-j", "DROP"],
    ]


def coredns_objects(image: str) -> list[dict[str, Any]]:
    """Cluster DNS as on any cluster: CoreDNS in kube-system behind the Service `kube-dns` at
    CLUSTER_DNS_IP, answering for cluster.local from the API and for nothing else (there is no
    upstream resolver to forward to)."""
    labels = {"k8s-app": "kube-dns"}
    metadata = {"name": "coredns", "namespace": "kube-system", "labels": labels}
    corefile = f""".:{COREDNS_PORT} {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loop
}}
"""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {"Corefile": corefile},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        # Its own resolver would be itself.
                        "dnsPolicy": "Default",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "coredns",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {
                                        "name": "dns",
                                        "containerPort": COREDNS_PORT,
                                        "protocol": "UDP",
                                    },
                                    {
                                        "name": "dns-tcp",
                                        "containerPort": COREDNS_PORT,
                                        "protocol": "TCP",
                                    },
                                ],
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "periodSeconds": 10,
                                },
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 2,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "32Mi"},
                                    "limits": {"memory": "128Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "selector": labels,
                "clusterIP": CLUSTER_DNS_IP,
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "targetPort": "dns-tcp", "protocol": "TCP"},
                ],
            },
        },
    ]


LOCAL_VOLUMES = 8
LOCAL_VOLUME_SIZE = "10Gi"


def local_storage_objects(
    site: NodeSite, files: NodeFiles, storage_class: str
) -> list[dict[str, Any]]:
    """The default StorageClass of the node: LOCAL_VOLUMES local volumes in the node's files,
    made beforehand (static provisioning). Local rather than hostPath volumes because the kubelet
    gives a local volume to the pod's fsGroup, so a non-root broker can write its data; the
    controller-manager's hostPath provisioner makes root-owned 0750 directories."""
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": storage_class,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            # Bind when the pod is scheduled, so the claim gets a volume of the pod's node.
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Retain",
        }
    ]
    for index in range(LOCAL_VOLUMES):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"{site.name}-local-{index}"},
                "spec": {
                    "capacity": {"storage": LOCAL_VOLUME_SIZE},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": storage_class,
                    "local": {"path": str(local_volume_path(files, index))},
                    "nodeAffinity": {
                        "required": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.io/hostname",
                                            "operator": "In",
                                            "values": [site.name],
                                        }
                                    ]
                                }
                            ]
                        }
                    },
                },
            }
        )
    return objects


def local_volume_path(files: NodeFiles, index: int) -> Path:
    return files.volumes / f"volume-{index}"


def dns_query(name: str, *, query_id: int) -> bytes:
    """A DNS query for the A record of `name` (RFC 1035 4.1), recursion desired."""
    header = query_id.to_bytes(2, "big") + b"\x01\x00" + b"\x00\x01" + b"\x00\x00" * 3
    labels = b"".join(
        len(label).to_bytes(1, "big") + label.encode("ascii")
        for label in name.rstrip(".").split(".")
    )
    return header + labels + b"\x00" + b"\x00\x01\x00\x01"


def dns_answer_addresses(response: bytes, *, query_id: int) -> list[str]:
    """The IPv4 addresses in a response to `dns_query` (empty for NXDOMAIN and the like)."""
    if len(response) < 12 or int.from_bytes(response[:2], "big") != query_id:
        raise ValueError("not a response to this query")
    if response[3] & 0x0F:  # RCODE
        return []
    questions = int.from_bytes(response[4:6], "big")
    answers = int.from_bytes(response[6:8], "big")
    offset = 12
    for _ in range(questions):
        offset = _skip_name(response, offset) + 4
    addresses = []
    for _ in range(answers):
        offset = _skip_name(response, offset)
        rtype = int.from_bytes(response[offset : offset + 2], "big")
        length = int.from_bytes(response[offset + 8 : offset + 10], "big")
        data = response[offset + 10 : offset + 10 + length]
        if rtype == 1 and length == 4:
            addresses.append(str(ipaddress.IPv4Address(data)))
        offset += 10 + length
    return addresses


def _skip_name(message: bytes, offset: int) -> int:
    while True:
        length = message[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        offset += 1 + length
