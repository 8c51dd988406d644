"""How fast the appservice endpoint ingests transactions, on SQLite and PostgreSQL.

The load is what Synapse sends: one transaction in flight at a time, 100 timeline events each,
over many rooms. Each transaction is written durably before it is acknowledged; the processor
drains the inbox at the same time, as in production. Only loopback is used.

    python -m bench.transactions [--transactions 200] [--events 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    bridge_config,
    drop_pg_database,
    new_pg_database,
    percentile,
    print_table,
)
from bridge.app import Bridge


def _transaction(txn: int, size: int) -> dict[str, Any]:
    return {
        "events": [
            {
                "event_id": f"$bench-{txn}-{n}",
                "room_id": f"!room{(txn * size + n) % 50}:bench.local",
                "type": "m.room.message",
                "sender": "@someone:bench.local",
                "origin_server_ts": 1_700_000_000_000 + n,
                "content": {"msgtype": "m.text", "body": f"message {txn}/{n} " + "x" * 120},
                "unsigned": {"age": 12},
            }
            for n in range(size)
        ]
    }


async def measure(database_url: str, transactions: int, size: int) -> list[object]:
    """Ingest `transactions` × `size` events through HTTP; returns one table row."""
    with tempfile.TemporaryDirectory() as folder:
        config = bridge_config(Path(folder), database_url, "http://127.0.0.1:9")
        bridge = Bridge(config)
        await bridge.start(checks=False)  # the endpoint on its own: no homeserver involved
        url = f"{config.appservice.public_url}/_matrix/app/v1/transactions/"
        headers = {"Authorization": f"Bearer {config.appservice.hs_token}"}
        bodies = [_transaction(t, size) for t in range(transactions)]
        latencies: list[float] = []
        try:
            async with aiohttp.ClientSession(headers=headers) as session:
                started = time.perf_counter()
                for t, body in enumerate(bodies):
                    sent = time.perf_counter()
                    async with session.put(url + f"b{t}", json=body) as response:
                        assert response.status == 200, await response.text()
                    latencies.append((time.perf_counter() - sent) * 1000)
                elapsed = time.perf_counter() - started
                resend_started = time.perf_counter()
                for t, body in enumerate(bodies[:50]):
                    async with session.put(url + f"b{t}", json=body) as response:
                        assert response.status == 200
                resend_rate = 50 / (time.perf_counter() - resend_started)
            while (await bridge.inbox.counts())["pending"]:
                await asyncio.sleep(0.05)
            drained = time.perf_counter() - started
            counts = await bridge.inbox.counts()
            assert counts["processed"] == transactions * size, counts
        finally:
            await bridge.stop()
    backend = database_url.split(":", 1)[0]
    return [
        backend,
        transactions / elapsed,
        transactions * size / elapsed,
        percentile(latencies, 50),
        percentile(latencies, 99),
        resend_rate,
        transactions * size / drained,
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows.append(await measure(f"sqlite:///{folder}/bench.db", args.transactions, args.events))
    pg_url = await new_pg_database()
    try:
        rows.append(await measure(pg_url, args.transactions, args.events))
    finally:
        await drop_pg_database(pg_url)
    print(
        f"\nAppservice ingest: {args.transactions} transactions × {args.events} events, "
        "one in flight (as Synapse sends)\n"
    )
    print_table(
        ["database", "txn/s", "events/s", "p50 ms", "p99 ms", "resend txn/s", "processed ev/s"],
        rows,
    )


if __name__ == "__main__":
    asyncio.run(main())
