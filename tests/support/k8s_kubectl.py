"""Running kubectl against one kubeconfig, with a bounded run time and readable failures."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Longer than any `kubectl wait --timeout` the tests pass, so kubectl reports its own timeout.
KUBECTL_TIMEOUT = 180.0


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; the message carries its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


def run_kubectl(
    kubectl: Path,
    kubeconfig: Path,
    *args: str,
    input: str | None = None,  # the name subprocess.run uses
    check: bool = True,
    cache_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`cache_dir`: where kubectl caches API discovery (default ~/.kube/cache, which would gain a
    directory per throwaway cluster)."""
    command = [str(kubectl), f"--kubeconfig={kubeconfig}"]
    if cache_dir is not None:
        command.append(f"--cache-dir={cache_dir}")
    command += args
    result = subprocess.run(
        command,
        input=input,
        capture_output=True,
        text=True,
        timeout=KUBECTL_TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        raise KubectlError(result.returncode, command, result.stdout, result.stderr)
    return result
