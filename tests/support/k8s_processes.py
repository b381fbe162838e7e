"""Long-running component processes: start each in its own process group, stop the whole group.

A process group per component means one signal reaches everything it spawned, and a Ctrl-C in
the terminal reaches only the test runner, which then stops the components in order. Processes
started `attached` also die with the process that started them (PR_SET_PDEATHSIG), so even a
SIGKILLed test run leaves nothing behind; `detached` ones (`make cluster-up`) outlive it and are
stopped later by pid, after checking that the pid still runs the same executable.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


@dataclass
class Component:
    """One running control-plane process."""

    name: str
    pid: int
    executable: Path
    log: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    """Set when this process started it (and so must reap it)."""

    def is_running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _runs_executable(self.pid, self.executable)

    def rss_bytes(self) -> int:
        """Resident memory now (0 once it is gone)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


def spawn(
    name: str,
    command: list[str],
    *,
    log: Path,
    attached: bool,
    prefix: Sequence[str] = (),
) -> Component:
    """Start `command` in a new session with stdout and stderr appended to `log`.

    `prefix`: a launcher that execs `command` in place (such as `nsenter ... --`), so the process
    is still `command[0]` once it runs."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [*prefix, *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # preexec_fn is unsafe only for code that may take locks; _die_with_parent cannot.
            preexec_fn=_die_with_parent if attached else None,  # noqa: PLW1509
        )
    return Component(name, popen.pid, Path(command[0]).resolve(), log, popen)


def stop(component: Component, *, grace: float) -> None:
    """SIGTERM the component's process group, SIGKILL it after `grace` seconds."""
    if not component.is_running():
        return
    _signal_group(component.pid, signal.SIGTERM)
    if not _wait_exit(component, grace):
        _signal_group(component.pid, signal.SIGKILL)
        _wait_exit(component, grace)
    # Whatever the leader left behind in its group goes with it.
    _signal_group(component.pid, signal.SIGKILL)


def call_on_exit(callback: Callable[[], None]) -> None:
    """Run `callback` at interpreter exit, also when ended by SIGTERM or SIGHUP (whose default
    action skips atexit)."""
    atexit.register(callback)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _interrupt)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # Unwind as after Ctrl-C: pytest then ends the run and tears its fixtures down.
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    # Runs between fork and exec: only the one foreign call, resolved beforehand in the parent.
    # The kernel sends the signal when the *thread* that forked exits, so attached components
    # must be started from a thread that lives as long as they should (pytest's main thread).
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _runs_executable(pid: int, executable: Path) -> bool:
    # A recorded pid may have been reused by an unrelated process since; never signal that one.
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")) == executable
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _wait_exit(component: Component, timeout: float) -> bool:
    if component.popen is not None:
        try:
            component.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    # Not our child: a pidfd becomes readable when the process exits.
    try:
        pidfd = os.pidfd_open(component.pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return bool(readable)
