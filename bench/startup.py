"""Start-up times: a throwaway Synapse, and the bridge against it (migrations and checks).

python -m bench.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import bridge_config, median, print_table
from bridge.app import Bridge
from bridge.demo.synapse import LocalSynapse, free_port
from bridge.matrix.registration import write_registration


async def one_run(folder: Path) -> dict[str, float]:
    """Times (s) of one cold and one warm start of Synapse and of the bridge."""
    port = free_port()
    synapse = LocalSynapse(folder / "synapse", server_name="bench.local")
    config = bridge_config(folder, "sqlite:///bridge.db", synapse.url, port)
    write_registration(config, folder / "registration.yaml")
    synapse.registration_files = [folder / "registration.yaml"]
    times: dict[str, float] = {}
    try:
        started = time.perf_counter()
        await asyncio.to_thread(synapse.start)
        times["synapse, first start"] = time.perf_counter() - started
        for label in ("bridge, first start", "bridge, restart"):
            bridge = Bridge(config)
            started = time.perf_counter()
            await bridge.start()
            times[label] = time.perf_counter() - started
            await bridge.stop()
        await asyncio.to_thread(synapse.stop)
        started = time.perf_counter()
        await asyncio.to_thread(synapse.start)
        times["synapse, restart"] = time.perf_counter() - started
        bridge = Bridge(config)
        started = time.perf_counter()
        await bridge.start()
        times["bridge, restart"] = min(times["bridge, restart"], time.perf_counter() - started)
        await bridge.stop()
    finally:
        await asyncio.to_thread(synapse.stop)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            runs.append(await one_run(Path(folder)))
    print(f"\nStart-up, {args.runs} runs (SQLite, loopback); seconds\n")
    rows = [
        [label, median([r[label] for r in runs]), max(r[label] for r in runs)] for label in runs[0]
    ]
    both = [r["synapse, first start"] + r["bridge, first start"] for r in runs]
    rows.append(["synapse + bridge, first start", median(both), max(both)])
    print_table(["what", "median s", "max s"], rows)


if __name__ == "__main__":
    asyncio.run(main())
