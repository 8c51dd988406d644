"""Refusal alerts: one alert per person an hour at most, at the threshold, and counts of people
who went quiet are dropped."""

from __future__ import annotations

import asyncio

from bridge.services.alerts import RefusalAlerts


async def test_an_alert_comes_at_the_threshold_once_an_hour_and_quiet_people_are_forgotten() -> (
    None
):
    now = [0.0]
    posted: list[str] = []

    async def post(text: str, _key: str) -> None:
        posted.append(text)

    alerts = RefusalAlerts(3, post, clock=lambda: now[0], tidy_seconds=0.01)
    alerts.refused("quiet", "rate_limited")
    for _ in range(3):
        alerts.refused("loud", "contact_info")
    alerts.refused("loud", "contact_info")  # within the hour: no second alert
    worker = asyncio.create_task(alerts.run())
    async with asyncio.timeout(5):
        while not posted:
            await asyncio.sleep(0)
    assert len(posted) == 1 and "3 blocked for contact information" in posted[0]
    now[0] = 4000.0  # more than an hour later, with no alert due: the tidying pass forgets
    async with asyncio.timeout(5):
        while alerts._refusals:
            await asyncio.sleep(0.01)
    alerts.stop()
    await worker
    assert len(posted) == 1
