"""A bare procrastinate worker on the ``bare`` queue: ``python -m bench.bare_worker URL C``."""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.noop_tasks import BARE_QUEUE, bare_app


async def main(conninfo: str, concurrency: int) -> None:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(concurrency + 1))
    app = bare_app(conninfo)
    async with app.open_async():
        await app.run_worker_async(queues=[BARE_QUEUE], concurrency=concurrency)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
