"""Connect and socket-onto-stdio events on the real kernel."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time

import pytest

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.probe import ProcessProbe

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("kernel tests need root (CI runs them as root)", allow_module_level=True)


def drain(probe: ProcessProbe, seconds: float = 0.8) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe.poll(50)


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_connect_carries_the_destination(family: socket.AddressFamily, host: str) -> None:
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as server:
            server.bind((host, 0))
            server.listen()
            port = server.getsockname()[1]
            with socket.create_connection((host, port)):
                pass
        drain(probe)
    finally:
        probe.close()
    mine = [e for e in seen if e.type == "connect" and e.dest_port == port]
    assert len(mine) == 1
    assert mine[0].dest_ip == host and mine[0].pid == os.getpid() and mine[0].container_id == "host"
    assert mine[0].res == 0 and mine[0].sock_type == socket.SOCK_STREAM  # reported on return


def test_refused_connect_carries_its_error() -> None:
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append)
    try:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]  # bound, not listening: refused
            with pytest.raises(ConnectionRefusedError), socket.socket() as client:
                client.connect(("127.0.0.1", port))
        drain(probe)
    finally:
        probe.close()
    mine = [e for e in seen if e.type == "connect" and e.dest_port == port]
    assert len(mine) == 1 and mine[0].res == -errno.ECONNREFUSED


def test_socket_duplicated_onto_stdout_is_reported_and_a_file_is_not() -> None:
    program = (
        "import os, socket, sys\n"
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen()\n"
        "client = socket.create_connection(server.getsockname())\n"
        "log = open('/dev/null', 'w')\n"
        "os.dup2(log.fileno(), 2)\n"  # a file onto stderr: not a reverse shell
        "os.dup2(client.fileno(), 1)\n"  # a socket onto stdout: the mark of one
    )
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append)
    try:
        child = subprocess.run([sys.executable, "-c", program], check=True)
        drain(probe)
    finally:
        probe.close()
    assert child.returncode == 0
    dups = [e for e in seen if e.type == "dup_socket" and e.comm.startswith("python")]
    assert [e.newfd for e in dups] == [1]
    assert dups[0].fd > 2


def test_listen_and_accept_carry_ports_and_the_client() -> None:
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append, accepts=True)
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port)) as client:
                accepted, _ = server.accept()
                accepted.close()
                client_port = client.getsockname()[1]
        drain(probe)
    finally:
        probe.close()
    mine = [e for e in seen if e.pid == os.getpid() and e.type in ("listen", "accept")]
    assert [(e.type, e.local_port) for e in mine] == [("listen", port), ("accept", port)]
    accept = mine[1]
    assert accept.dest_ip == "127.0.0.1" and accept.dest_port == client_port
    assert accept.syscall == "accept4" and accept.fd >= 0


def test_accepts_stay_in_the_kernel_unless_asked_for() -> None:
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append, accepts=False)
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            with socket.create_connection(server.getsockname()):
                server.accept()[0].close()
        drain(probe)
    finally:
        probe.close()
    kinds = {e.type for e in seen if e.pid == os.getpid()}
    assert "listen" in kinds and "accept" not in kinds


def test_a_server_socket_at_a_closed_clients_address_is_not_outbound() -> None:
    """Socket memory is reused: an accepted socket must not inherit a closed client's mark.

    Many rounds of (connect out, close), each followed by a server accepting a connection and
    putting it on stdout, as inetd-style servers (busybox httpd) do. Before closed sockets left
    the kernel's outbound map, some accepted sockets landed on a freed client's address and
    read as outbound: a reverse shell alert for a web server.
    """
    program = (
        "import os, socket\n"
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen(64)\n"
        "address = server.getsockname()\n"
        "out = os.dup(1)\n"
        "for _ in range(300):\n"
        "    socket.create_connection(address).close()\n"  # an outbound client, closed
        "    server.accept()[0].close()\n"
        "    peer = socket.create_connection(address)\n"
        "    accepted, _ = server.accept()\n"
        "    os.dup2(accepted.fileno(), 1)\n"  # the server's accepted socket onto stdout
        "    os.dup2(out, 1)\n"
        "    accepted.close(); peer.close()\n"
    )
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append)
    try:
        subprocess.run([sys.executable, "-c", program], check=True, stdout=subprocess.DEVNULL)
        drain(probe, 1.5)
    finally:
        probe.close()
    dups = [
        e
        for e in seen
        if e.type == "dup_socket" and e.comm.startswith("python") and e.newfd == 1 and e.fd > 2
    ]
    assert len(dups) == 300
    assert [e for e in dups if e.outbound] == []
