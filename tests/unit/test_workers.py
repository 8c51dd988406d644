"""The worker shape: backoff, and the supervisor's start, restart and stop."""

from __future__ import annotations

import asyncio

from bridge.services.workers import Backoff, Supervisor, Wakeup


def test_backoff_doubles_to_its_ceiling_and_starts_over_after_a_success() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.succeeded()
    assert backoff.failed() == 0.5


class FakeWorker:
    """Counts its runs; fails the first `failures` times; holds `work` until it is done."""

    def __init__(self, failures: int = 0) -> None:
        self.runs = 0
        self.failures = failures
        self.wakeup = Wakeup()
        self.finished_work = False
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.work_done = asyncio.Event()  # the test says when the work in hand is done

    async def run(self) -> None:
        self.runs += 1
        self.started.set()
        if self.runs <= self.failures:
            raise RuntimeError("boom")
        while not self.wakeup.stopping:
            await self.wakeup.wait(60)
        self.stopped.set()
        await self.work_done.wait()  # the work in hand, still going after stop()
        self.finished_work = True

    def stop(self) -> None:
        self.wakeup.stop()


async def test_a_worker_that_fails_is_started_again_and_stop_lets_work_finish() -> None:
    flaky, steady = FakeWorker(failures=1), FakeWorker()
    supervisor = Supervisor()
    supervisor.add("flaky", flaky.run, flaky.stop)
    supervisor.add("steady", steady.run, steady.stop)
    supervisor.start()
    async with asyncio.timeout(10):
        await steady.started.wait()
        while flaky.runs < 2:  # started again after its failure
            await flaky.started.wait()
            flaky.started.clear()
    stopping = asyncio.create_task(supervisor.stop(grace=5))
    async with asyncio.timeout(5):
        await flaky.stopped.wait()
        await steady.stopped.wait()
    assert not stopping.done()  # stop() waits for the work in hand …
    flaky.work_done.set()
    steady.work_done.set()
    await stopping
    # … and nothing is cut short while it finishes within the grace period.
    assert flaky.finished_work and steady.finished_work


async def test_a_backoff_pause_ends_at_stop_but_not_at_new_work() -> None:
    wakeup = Wakeup()
    pause = asyncio.create_task(wakeup.pause(60))
    marker = asyncio.create_task(wakeup.wait(60))  # a wait that new work does end
    wakeup.set()  # new work
    assert await marker  # by now the new work reached every waiter …
    assert not pause.done()  # … and the pause goes on
    wakeup.stop()
    async with asyncio.timeout(1):
        await pause


async def test_stop_ends_work_that_overruns_the_grace_period() -> None:
    class Stuck:
        async def run(self) -> None:
            await asyncio.sleep(3600)

        def stop(self) -> None:
            pass

    stuck = Stuck()
    supervisor = Supervisor()
    supervisor.add("stuck", stuck.run, stuck.stop)
    supervisor.start()
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await supervisor.stop(grace=0.1)
