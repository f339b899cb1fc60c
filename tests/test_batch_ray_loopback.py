"""Issue 28: a local `--engine ray` (no --address) listens on this machine only. Ray has no
authentication worth trusting on a hospital network, and it used to listen on every interface
(`::` and the machine's outward address). Every listening TCP socket of the processes the local
Ray started is read from /proc (the process tree under this one, /proc/net/tcp and tcp6)."""
from __future__ import annotations

import ipaddress
import os
import socket
import sys

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")]


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _socket_inodes(pids: set[int]) -> dict[int, int]:
    inodes = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes[int(link[8:-1])] = pid
    return inodes


def _address(field: str, v6: bool) -> tuple[str, int]:
    ip, port = field.split(":")
    raw = bytes.fromhex(ip)
    if v6:
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        return socket.inet_ntop(socket.AF_INET6, raw), int(port, 16)
    return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)


def listening(pids: set[int]) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket the processes hold."""
    inodes = _socket_inodes(pids)
    out = []
    for table, v6 in (("tcp", False), ("tcp6", True)):
        try:
            with open(f"/proc/net/{table}") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cells = line.split()
            if cells[3] == "0A" and int(cells[9]) in inodes:    # 0A: LISTEN
                pid = inodes[int(cells[9])]
                try:
                    with open(f"/proc/{pid}/comm") as fh:
                        name = fh.read().strip()
                except OSError:
                    name = str(pid)
                out.append((name, *_address(cells[1], v6)))
    return out


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_a_local_ray_listens_on_loopback_only():
    import ray
    from pneumo.service.batch_ray import _start

    if ray.is_initialized():
        ray.shutdown()                  # a Ray another test left up: this test starts its own
    ray, started = _start(None)
    try:
        assert started
        sockets = listening(_descendants(os.getpid()) | {os.getpid()})
        names = {name for name, _, _ in sockets}
        assert "gcs_server" in names and "raylet" in names, sockets        # the servers were found
        outside = [s for s in sockets if not _loopback(s[1])]
        assert outside == [], f"listening beyond this machine: {outside}"
        assert all(_loopback(n["NodeManagerAddress"]) for n in ray.nodes())
    finally:
        ray.shutdown()
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") is None     # the setting does not outlive the start
