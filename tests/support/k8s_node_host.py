"""The host side of a real node: make its namespaces and link, and remove every trace of it.

`prepare` and `remove` are each other's inverse, and `remove` works from nothing but the site's
name: it is what `make cluster-down` runs, and what runs before a start, so that a node that
crashed (or a killed test run) leaves nothing that the next start trips over. Needs root.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.k8s_components import SERVICE_CIDR
from tests.support.k8s_node import (
    KUBELET_KERNEL_SETTINGS,
    MOUNT_NAMESPACES,
    NODE_INTERFACE,
    NODE_NAMESPACE_SETTINGS,
    NodeFiles,
    NodeSite,
    dns_answer_addresses,
    dns_query,
    mount_namespace_path,
    node_namespace_firewall,
)

CGROUP_FS = Path("/sys/fs/cgroup")
PROC_SYS = Path("/proc/sys")
KILL_WAIT = 10.0
COMMAND_TIMEOUT = 30.0
DNS_ANSWER_TIMEOUT = 2.0
# Bounds the unmount loop; more than one only after a crash between mount and record.
MAX_STACKED_MOUNTS = 8


class NodeHostError(RuntimeError):
    """The host could not be prepared for a node (the message says what failed)."""


def prepare(site: NodeSite, files: NodeFiles) -> None:
    """Create the node's network namespace, its link to this machine and its mount namespace,
    and record the kernel settings the kubelet is about to change."""
    if os.geteuid() != 0:
        raise NodeHostError("a real node needs root (namespaces, mounts, iptables)")
    remove(site, files)
    files.root.mkdir(parents=True, exist_ok=True)
    _record_kernel_settings(files)
    _run("ip", "netns", "add", site.name)
    _run(
        "ip", "link", "add", site.host_interface, "type", "veth",
        "peer", "name", NODE_INTERFACE, "netns", site.name,
    )  # fmt: skip
    _run("ip", "addr", "add", f"{site.host_ip}/{site.prefix_length}", "dev", site.host_interface)
    _run("ip", "link", "set", site.host_interface, "up")
    in_node = ["ip", "netns", "exec", site.name]
    _run(*in_node, "ip", "link", "set", "lo", "up")
    _run(
        *in_node, "ip", "addr", "add", f"{site.node_ip}/{site.prefix_length}", "dev", NODE_INTERFACE
    )
    _run(*in_node, "ip", "link", "set", NODE_INTERFACE, "up")
    # The node's own connections to a Service address (probes, the DNS check) need a route
    # before kube-proxy's OUTPUT rules rewrite them to a pod; there is no default route, and
    # this kernel has no dummy interfaces. An address that no Service has goes to this machine,
    # which does not forward it.
    _run(*in_node, "ip", "route", "add", SERVICE_CIDR, "dev", NODE_INTERFACE)
    for key, value in NODE_NAMESPACE_SETTINGS.items():
        _run(*in_node, "sh", "-c", f"echo {value} > {PROC_SYS / key}")
    for command in node_namespace_firewall(site):
        _run(*in_node, *command)
    _pin_mount_namespace(site)
    _make_cgroup_root(site)


def remove(site: NodeSite, files: NodeFiles) -> None:
    """Stop whatever the node left running and remove its namespaces, link, mounts and cgroups,
    then give the kernel settings back. Each step is a no-op when there is nothing to undo."""
    _kill_node_processes(site, files)
    pinned = mount_namespace_path(site)
    if pinned.exists():
        # The last reference: every mount the node made goes with its namespace.
        _run("umount", str(pinned), check=False)
        pinned.unlink(missing_ok=True)
    if site.netns_path.exists():
        # Takes the node's bridge, veths and iptables rules with it (and the host end).
        _run("ip", "netns", "delete", site.name, check=False)
    if Path(f"/sys/class/net/{site.host_interface}").exists():
        _run("ip", "link", "delete", site.host_interface, check=False)
    _remove_cgroups(site)
    _restore_kernel_settings(files)
    _release_mount_namespace_dir()


def is_prepared(site: NodeSite) -> bool:
    return site.netns_path.exists() and mount_namespace_path(site).exists()


def _pin_mount_namespace(site: NodeSite) -> None:
    # `unshare --mount=FILE` binds the new namespace to FILE, which must sit on a mount with
    # private propagation; the node's own mounts then never propagate to this machine.
    MOUNT_NAMESPACES.mkdir(parents=True, exist_ok=True)
    if not _is_mount_point(MOUNT_NAMESPACES):
        _run("mount", "--bind", str(MOUNT_NAMESPACES), str(MOUNT_NAMESPACES))
        _run("mount", "--make-private", str(MOUNT_NAMESPACES))
    pinned = mount_namespace_path(site)
    pinned.touch()
    _run("unshare", f"--mount={pinned}", "--propagation=private", "true")


def _release_mount_namespace_dir() -> None:
    if not MOUNT_NAMESPACES.is_dir() or any(MOUNT_NAMESPACES.iterdir()):
        return  # another node's namespace is still pinned here
    for _ in range(MAX_STACKED_MOUNTS):
        if not _is_mount_point(MOUNT_NAMESPACES):
            break
        _run("umount", str(MOUNT_NAMESPACES), check=False)
    with contextlib.suppress(OSError):
        MOUNT_NAMESPACES.rmdir()


def _is_mount_point(path: Path) -> bool:
    # os.path.ismount cannot see a directory bound onto itself (same device as its parent).
    mount_points = (
        line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )
    return str(path) in mount_points


def _kill_node_processes(site: NodeSite, files: NodeFiles) -> None:
    """Every process of the node: those in its network namespace (the components, the
    containerd shims and every container), and those in its cgroups (containers whose shim is
    already gone)."""
    for _ in range(3):
        pids = _pids_in_network_namespace(site) | _pids_in_cgroups(site)
        pids |= _shims_of(files)
        pids.discard(os.getpid())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.1)


def _pids_in_network_namespace(site: NodeSite) -> set[int]:
    try:
        target = os.stat(site.netns_path)
    except FileNotFoundError:
        return set()
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ns = os.stat(proc / "ns" / "net")
        except OSError:
            continue
        if (ns.st_dev, ns.st_ino) == (target.st_dev, target.st_ino):
            found.add(int(proc.name))
    return found


def _shims_of(files: NodeFiles) -> set[int]:
    # containerd starts each shim in a process group of its own, outside the node namespace's
    # first process tree; a shim names the containerd it serves on its command line.
    address = str(files.containerd_socket).encode()
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address in argv:
            found.add(int(proc.name))
    return found


def _make_cgroup_root(site: NodeSite) -> None:
    """The kubelet's cgroupRoot must exist in every hierarchy before it starts."""
    root = site.cgroup_root.lstrip("/")
    for hierarchy in CGROUP_FS.iterdir():
        if not hierarchy.is_dir() or not (hierarchy / "cgroup.procs").exists():
            continue
        (hierarchy / root).mkdir(exist_ok=True)
        # A v1 cpuset starts with no CPUs and no memory nodes: give it the parent's.
        for key in ("cpuset.cpus", "cpuset.mems"):
            if (hierarchy / key).exists():
                (hierarchy / root / key).write_text((hierarchy / key).read_text())


def _cgroup_trees(site: NodeSite) -> list[Path]:
    root = site.cgroup_root.lstrip("/")
    return [h / root for h in CGROUP_FS.iterdir() if (h / root).is_dir()]


def _pids_in_cgroups(site: NodeSite) -> set[int]:
    found = set()
    for tree in _cgroup_trees(site):
        for procs in tree.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                found.update(int(line) for line in procs.read_text().split())
    return found


def _remove_cgroups(site: NodeSite) -> None:
    for tree in _cgroup_trees(site):
        # Children first: a cgroup with children (or processes) cannot be removed.
        for directory in sorted(
            (d for d in tree.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            tree.rmdir()


def _record_kernel_settings(files: NodeFiles) -> None:
    values = {key: (PROC_SYS / key).read_text().strip() for key in KUBELET_KERNEL_SETTINGS}
    files.kernel_settings.write_text(json.dumps(values))


def _restore_kernel_settings(files: NodeFiles) -> None:
    try:
        values = json.loads(files.kernel_settings.read_text())
    except FileNotFoundError:
        return
    for key, value in values.items():
        if key in KUBELET_KERNEL_SETTINGS:
            (PROC_SYS / key).write_text(value)
    files.kernel_settings.unlink()


def resolve(server: str, name: str) -> list[str]:
    """Ask the DNS server at `server` (port 53, UDP) for `name`'s addresses; empty on no answer."""
    query_id = secrets.randbelow(2**16)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(DNS_ANSWER_TIMEOUT)
        try:
            sock.sendto(dns_query(name, query_id=query_id), (server, 53))
            response, _ = sock.recvfrom(4096)
        except OSError:
            return []
    return dns_answer_addresses(response, query_id=query_id)


def _run(*command: str, check: bool = True) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if check and result.returncode != 0:
        raise NodeHostError(f"{' '.join(command)} failed: {result.stderr.strip()}")
