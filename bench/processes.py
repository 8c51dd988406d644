"""The processes a benchmark runs and watches: the bridge as its own process, CPU and memory
read from /proc."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.common import bridge_config
from bridge.config import Config
from bridge.demo.synapse import LocalSynapse
from bridge.matrix.registration import write_registration


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (Linux only; None elsewhere)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """CPU time the whole machine has spent busy so far, all cores (Linux only)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_now(pids: tuple[int | None, ...]) -> list[float | None]:
    """CPU seconds each process has used so far."""
    return [process_cpu_seconds(pid) for pid in pids]


def cpu_used(before: list[float | None], after: list[float | None]) -> list[float | None]:
    """CPU seconds each process used between two `cpu_now`."""
    return [
        b - a if a is not None and b is not None else None
        for a, b in zip(before, after, strict=True)
    ]


def rss_kib(pid: int) -> int:
    """The resident set size of a process, in KiB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft limit of open files (the bridge's process inherits it) to at
    least `needed`, up to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(
            f"{needed} open files needed, but the hard limit is {hard}: raise it (ulimit -Hn)"
        )
    return soft


class BridgeProcess:
    """The bridge run as a person runs it: `python -m bridge run -c <config>`, its log in a
    file (not a pipe nobody reads while it runs)."""

    def __init__(self, config: Config, log_path: Path) -> None:
        assert config.source is not None
        self.config_path = config.source
        self.port = config.appservice.listen_port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until `GET /ready` answers 200 (blocking)."""
        with self.log_path.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bridge", "run", "-c", str(self.config_path)],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the bridge exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the bridge was not ready within {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM, then SIGKILL after `timeout`; returns how long it took to exit (blocking)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return 0.0
        started = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.returncode = process.returncode
        return time.perf_counter() - started


async def quiet(pid: int, within: float = 30.0) -> float:
    """Wait until a process uses under 5% of a core over half a second (its start-up and
    set-up work done); returns how long that took."""
    started = time.perf_counter()
    before = process_cpu_seconds(pid)
    while time.perf_counter() - started < within:
        await asyncio.sleep(0.5)
        now = process_cpu_seconds(pid)
        if before is None or now is None or now - before < 0.025:
            break
        before = now
    return time.perf_counter() - started


def synapse_and_bridge(
    folder: Path, database_url: str
) -> tuple[LocalSynapse, Config, BridgeProcess]:
    """A throwaway Synapse that loads the bridge's registration, the bridge's config on
    `database_url`, and the bridge's process (neither started), all under `folder`."""
    synapse = LocalSynapse(folder / "synapse", server_name="bench.local")
    config = bridge_config(folder, database_url, synapse.url)
    write_registration(config, folder / "registration.yaml")
    synapse.registration_files = [folder / "registration.yaml"]
    return synapse, config, BridgeProcess(config, folder / "bridge.log")
