"""Waiting in tests on a condition polled with a deadline (never on a fixed sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

POLL_SECONDS = 0.1


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str = "the awaited condition", timeout: float = 20.0
) -> Any:
    """Poll `check` until it answers something true, and return that; fail naming `what` if it
    hasn't within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} never happened within {timeout:.0f} s")
        await asyncio.sleep(POLL_SECONDS)
    return found
