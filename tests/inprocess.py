"""Running the real worker inside the test process, until nothing is left to fetch."""

from __future__ import annotations

import asyncio

from worker.app import app


def drain(queues: list[str] | None = None) -> None:
    """Run a worker (every queue, or ``queues``) in this process until nothing is fetchable."""

    async def run() -> None:
        async with app.open_async():
            await app.run_worker_async(
                queues=queues, wait=False, install_signal_handlers=False, listen_notify=False
            )

    asyncio.run(run())
