"""What the test control plane runs, as data: files, command lines, configs, bootstrap objects.

Pure functions (no I/O), so the whole shape of the cluster reads in one place; starting and
stopping the processes is `tests.fixtures.controlplane`'s job.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.k8s_pki import KeyPair

# With kwok, virtual addresses that nothing routes: there is no kube-proxy and kwok's pods run
# nothing, so these ranges never carry a packet; every real socket is on 127.0.0.1. A real node
# (tests.support.k8s_node) uses the same ranges inside its own network namespace.
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.1/24"
# kwok manages exactly the Nodes carrying this annotation (and so never a real node of a cluster
# it is pointed at by mistake).
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
DEFAULT_STORAGE_CLASS = "standard"


@dataclass(frozen=True)
class StateDir:
    """The files of one control plane, all under `root`."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kubectl_cache(self) -> Path:
        return self.root / "kubectl-cache"

    @property
    def kwok_config(self) -> Path:
        return self.root / "kwok.yaml"

    @property
    def state_file(self) -> Path:
        """Which processes run (for `controlplane down` from another process)."""
        return self.root / "state.json"

    def kubeconfig(self, user: str) -> Path:
        return self.root / f"{user}.kubeconfig"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one control plane, all picked free at start."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    apiserver_host: str = "127.0.0.1"
    """Where the apiserver listens and what it advertises: loopback, or a real node's address."""

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client}"

    @property
    def apiserver_url(self) -> str:
        return f"https://{self.apiserver_host}:{self.apiserver}"


def etcd_command(bin_dir: Path, state: StateDir, ports: Ports) -> list[str]:
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(bin_dir / "etcd"),
        "--name=default",
        f"--data-dir={state.etcd_data}",
        f"--listen-client-urls={ports.etcd_url}",
        f"--advertise-client-urls={ports.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        # A throwaway cluster: durability is worth nothing, fsync latency is worth a lot.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_command(
    bin_dir: Path, state: StateDir, ports: Ports, *, real_node: bool = False
) -> list[str]:
    pki = state.pki
    if real_node:
        # Pods reach the apiserver through the `kubernetes` Service, whose endpoint is the
        # advertised address; the apiserver reaches kubelets (logs, exec, port-forward) with
        # its own client certificate, at their InternalIP (the node name resolves nowhere).
        node_flags = [
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--enable-admission-plugins=NodeRestriction",
        ]
    else:
        # The `kubernetes` Service would point at 127.0.0.1, which Endpoints reject and no pod
        # could reach anyway.
        node_flags = ["--endpoint-reconciler-type=none"]
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={ports.etcd_url}",
        f"--bind-address={ports.apiserver_host}",
        f"--advertise-address={ports.apiserver_host}",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={pki}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        *node_flags,
        "--profiling=false",
    ]


def _control_loop_flags(bin_dir: Path, state: StateDir, component: str) -> list[str]:
    """What kube-controller-manager and kube-scheduler share: one identity for every call,
    a single instance (no leader election), and no serving port.

    Their health endpoints are not needed (readiness shows in the objects they act on), and
    without them no port has to be found.
    """
    kubeconfig = state.kubeconfig(component)
    return [
        str(bin_dir / f"kube-{component}"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--profiling=false",
    ]


def controller_manager_command(bin_dir: Path, state: StateDir) -> list[str]:
    return [
        *_control_loop_flags(bin_dir, state, "controller-manager"),
        f"--service-account-private-key-file={state.pki / 'sa.key'}",
        f"--root-ca-file={state.pki / 'ca.crt'}",
        # Each controller acts as its own service account, as the built-in RBAC roles expect.
        "--use-service-account-credentials=true",
        "--controllers=*",
        "--enable-garbage-collector=true",
        # Provisions hostPath PVs under /tmp/hostpath_pv, so PVCs (StatefulSet storage) bind.
        "--enable-hostpath-provisioner=true",
        # kwok renews the fake nodes' leases from a process that shares two cores with the
        # whole test suite; with the default 50 s grace a busy minute marks every node NotReady
        # and pods lose readiness mid-test. Node failure is not what these tests exercise.
        "--node-monitor-grace-period=5m",
    ]


def scheduler_command(bin_dir: Path, state: StateDir) -> list[str]:
    return _control_loop_flags(bin_dir, state, "scheduler")


def kwok_command(bin_dir: Path, state: StateDir) -> list[str]:
    return [
        str(bin_dir / "kwok"),
        f"--kubeconfig={state.kubeconfig('admin')}",
        # An explicit file, so a developer's ~/.kwok/kwok.yaml never changes the test cluster.
        f"--config={state.kwok_config}",
    ]


def kwok_configuration() -> dict[str, Any]:
    """kwok 0.7 options; with no Stage in the file it uses its built-in node and pod stages."""
    key, value = KWOK_NODE_ANNOTATION
    return {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "manageAllNodes": False,
            "manageNodesWithAnnotationSelector": f"{key}={value}",
            "cidr": POD_CIDR,
            # The address the apiserver would use for logs/exec; kwok serves neither here, so
            # keep it on loopback rather than kwok's default, a public address.
            "nodeIP": "127.0.0.1",
        },
    }


def kubeconfig(*, server: str, ca_pem: bytes, client: KeyPair, user: str) -> dict[str, Any]:
    """A kubeconfig with the certificates embedded: kopf and the kubernetes client read the file
    themselves and would resolve relative paths against the wrong directory."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "chatcluster-test",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client.cert_pem),
                    "client-key-data": _b64(client.key_pem),
                },
            }
        ],
        "contexts": [
            {"name": "chatcluster-test", "context": {"cluster": "chatcluster-test", "user": user}}
        ],
        "current-context": "chatcluster-test",
    }


def fake_node(name: str) -> dict[str, Any]:
    """A Node that kwok keeps Ready and whose pods it marks Running; untainted, so unmodified
    workloads schedule on it."""
    key, value = KWOK_NODE_ANNOTATION
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            # ephemeral-storage too: every pod the operator makes requests some.
            "allocatable": {
                "cpu": "32",
                "memory": "256Gi",
                "ephemeral-storage": "100Gi",
                "pods": "110",
            },
            "capacity": {
                "cpu": "32",
                "memory": "256Gi",
                "ephemeral-storage": "100Gi",
                "pods": "110",
            },
        },
    }


def default_storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": DEFAULT_STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
