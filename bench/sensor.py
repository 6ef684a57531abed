"""Sensor footprint under load (needs root): events/s, drops, CPU and RSS; bpftrace as the peer.

Load (bench/loadgen.c, compiled here with cc): 2,000 execs/s (each also a fork and an exit),
20,000 opens/s of a watched path and 5,000 connects/s, together, for ``SECONDS``. Measured:
- the sensor as deployed on a node, ``garrison sensor --emit alerts`` (rules, hygiene, alert
  output), and collecting only (``--emit events`` to /dev/null);
- the ceiling: the same ring buffer drained with a callback that only counts (no decoding);
- the exec load alone captured side by side by the sensor and by bpftrace (Debian), each
  one's CPU per exec.
Targets (issue 6): 0 lost events; sensor CPU <= 0.36 core and RSS <= 296 MiB.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SECONDS = 10.0
LOAD = (("exec", 2_000), ("open", 20_000), ("connect", 5_000))
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    cpu_seconds: float
    peak_rss_mib: float


def usage(pid: int) -> Usage:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return Usage(cpu, peak)


def build_loadgen(directory: Path) -> Path:
    binary = directory / "loadgen"
    source = Path(__file__).with_name("loadgen.c")
    subprocess.run(["cc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def run_load(loadgen: Path, load: tuple[tuple[str, int], ...], seconds: float) -> dict[str, int]:
    with socket_port() as port:
        processes = {
            mode: subprocess.Popen(
                [
                    str(loadgen),
                    mode,
                    str(rate),
                    str(seconds),
                    str(port) if mode == "connect" else "/etc/shadow",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for mode, rate in load
        }
        return {mode: int(p.communicate()[0] or 0) for mode, p in processes.items()}


class socket_port:
    """A loopback TCP port nobody listens on (connects to it are refused at once)."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))  # bound, never listening
        port: int = self._socket.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


def start(command: list[str], ready: str | None) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    if ready is not None:
        for line in process.stderr:
            if ready in line:
                break
    else:
        time.sleep(3)
    return process


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(2)
    _, err = process.communicate(timeout=60)
    return err


def measure_sensor(label: str, command: list[str], loadgen: Path) -> dict[str, float]:
    sensor = start(command, "garrison sensor: attached")
    before = usage(sensor.pid)
    begin = time.monotonic()
    done = run_load(loadgen, LOAD, SECONDS)
    elapsed = time.monotonic() - begin
    time.sleep(1.0)  # let it drain
    after = usage(sensor.pid)
    err = stop(sensor)
    match = re.search(r"(\d+) events, (\d+) dropped", err)
    events, drops = (int(match.group(1)), int(match.group(2))) if match else (0, -1)
    cpu = (after.cpu_seconds - before.cpu_seconds) / elapsed
    generated = sum(done.values())
    print(
        f"  {label:<34} {events / elapsed:>9,.0f} events/s  drops {drops}  "
        f"CPU {cpu:.2f} core  peak RSS {after.peak_rss_mib:.0f} MiB"
    )
    return {
        "events/s": events / elapsed,
        "drops": drops,
        "cpu": cpu,
        "rss": after.peak_rss_mib,
        "generated": generated,
    }


DRAIN = """
import sys, signal
from garrison.sensor.probe import ProcessProbe
mapped = sys.argv[1] == "mapped"
count = 0
class Counting(ProcessProbe):
    def _record(self, raw):
        global count
        count += 1
probe = Counting(lambda e: None, mapped=mapped)
print("garrison sensor: attached", file=sys.stderr, flush=True)
stopping = []
signal.signal(signal.SIGINT, lambda *a: stopping.append(1))
while not stopping:
    probe.poll(100)
probe.poll(0)
probe.close()
print(f"{count} events, {probe.drops()} dropped", file=sys.stderr)
"""


def exec_side_by_side(loadgen: Path) -> None:
    bpftrace = shutil.which("bpftrace")
    if bpftrace is None:
        print("  bpftrace is not installed: peer comparison skipped")
        return
    sensor = start(
        [sys.executable, "-m", "garrison.cli", "sensor", "--emit", "events"],
        "garrison sensor: attached",
    )
    peer = start(
        [bpftrace, "-e", 'tracepoint:sched:sched_process_exec { printf("%d %s\\n", pid, comm); }'],
        None,
    )
    s0, p0 = usage(sensor.pid), usage(peer.pid)
    begin = time.monotonic()
    done = run_load(loadgen, (("exec", 2_000),), SECONDS)["exec"]
    elapsed = time.monotonic() - begin
    time.sleep(1.0)
    s1, p1 = usage(sensor.pid), usage(peer.pid)
    stop(sensor)
    stop(peer)
    sensor_cpu = (s1.cpu_seconds - s0.cpu_seconds) / done * 1e6
    peer_cpu = (p1.cpu_seconds - p0.cpu_seconds) / done * 1e6
    print(
        f"  exec load alone ({done / elapsed:,.0f} execs/s), side by side: sensor {sensor_cpu:.0f} µs CPU "
        f"per exec (with fork and exit events, JSON out), bpftrace {peer_cpu:.0f} µs; ratio "
        f"{sensor_cpu / peer_cpu if peer_cpu else float('nan'):.2f}"
    )


def main() -> dict[str, float]:
    if os.geteuid() != 0:
        print("sensor: skipped (needs root to load BPF programs)")
        return {}
    print(f"sensor: {SECONDS:.0f} s of 2,000 execs/s + 20,000 watched opens/s + 5,000 connects/s")
    with tempfile.TemporaryDirectory() as scratch:
        loadgen = build_loadgen(Path(scratch))
        garrison = [sys.executable, "-m", "garrison.cli", "sensor"]
        alerts = [*garrison, "--emit", "alerts"]
        figures = measure_sensor("sensor --emit alerts (rules on)", alerts, loadgen)
        measure_sensor("  same, ring read by mapping", [*alerts, "--ring", "mapped"], loadgen)
        events = [*garrison, "--emit", "events"]
        measure_sensor("sensor --emit events (JSON lines)", events, loadgen)
        for mode in ("mapped", "callback"):
            drain = [sys.executable, "-c", DRAIN, mode]
            measure_sensor(f"ring drained by {mode}, not decoded", drain, loadgen)
        exec_side_by_side(loadgen)
    print("  targets: 0 drops, CPU <= 0.36 core, RSS <= 296 MiB")
    return figures


if __name__ == "__main__":
    main()
