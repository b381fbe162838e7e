import os
import subprocess
import sys
import time

import pytest

from bench import procstat

# A command name with spaces and a parenthesis, as a process may choose for itself.
STAT = "42 (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 99 1000 50"


def test_cpu_ticks_are_utime_plus_stime_after_the_command_name() -> None:
    assert procstat.parse_cpu_ticks(STAT) == 325


def test_peak_and_current_rss_are_read_in_bytes() -> None:
    status = "Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"
    assert procstat.parse_status_bytes(status, "VmHWM") == 2048 * 1024
    assert procstat.parse_status_bytes(status, "VmRSS") == 1024 * 1024


def test_status_without_memory_lines_is_refused() -> None:
    with pytest.raises(ValueError, match="VmHWM"):
        procstat.parse_status_bytes("Name:\tkthreadd\n", "VmHWM")


def test_tcp_buffer_pages_come_from_the_tcp_line_of_sockstat() -> None:
    sockstat = "sockets: used 12\nTCP: inuse 2 orphan 0 tw 86 alloc 3 mem 38\nUDP: inuse 0 mem 7\n"
    assert procstat.parse_tcp_buffer_pages(sockstat) == 38


def test_socket_slab_bytes_are_active_objects_times_object_size() -> None:
    slabinfo = (
        "slabinfo - version: 2.1\n"
        "# name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : ...\n"
        "tw_sock_TCP  214  272  256 16 1 : tunables 0 0 0 : slabdata 17 17 0\n"
        "TCP           79  130 2368 13 8 : tunables 0 0 0 : slabdata 10 10 0\n"
        "sock_inode_cache 247 247 832 19 4 : tunables 0 0 0 : slabdata 13 13 0\n"
    )
    assert procstat.parse_slab_bytes(slabinfo, procstat.SOCKET_SLABS) == 79 * 2368 + 247 * 832


def test_own_cpu_time_grows_while_busy() -> None:
    before = procstat.cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    assert procstat.cpu_seconds([os.getpid()]) > before


def test_processes_are_found_by_a_command_line_word() -> None:
    marker = f"marker-{os.getpid()}-{time.monotonic_ns()}"
    assert procstat.pids_with_argument(marker) == []
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        # Right after the fork the child may still show the parent's command line.
        deadline = time.monotonic() + 5.0
        while not (found := procstat.pids_with_argument(marker)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert found == [child.pid]
    finally:
        child.kill()
        child.wait()


def test_netstat_counters_are_read_by_group_and_name() -> None:
    netstat = (
        "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n"
        "TcpExt: 0 179 181\n"
        "IpExt: InNoRoutes ListenOverflows\n"
        "IpExt: 3 9\n"
    )
    assert procstat.parse_netstat_counter(netstat, "TcpExt", "ListenOverflows") == 179
    assert procstat.parse_netstat_counter(netstat, "IpExt", "ListenOverflows") == 9
    with pytest.raises(ValueError, match="TcpExt Nothing"):
        procstat.parse_netstat_counter(netstat, "TcpExt", "Nothing")


def test_this_machine_counts_listen_overflows() -> None:
    assert procstat.listen_overflows() >= 0
