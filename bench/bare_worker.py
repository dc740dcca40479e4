"""A bare procrastinate worker on the ``bare`` queue: ``python -m bench.bare_worker URL C``.

Logs at WARNING, like procrastinate's own command line without ``-v`` (at INFO it writes two lines
per job); ``BENCH_LOG_LEVEL`` changes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.noop_tasks import BARE_QUEUE, bare_app


async def main(conninfo: str, concurrency: int) -> None:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(concurrency + 1))
    app = bare_app(conninfo)
    async with app.open_async():
        await app.run_worker_async(queues=[BARE_QUEUE], concurrency=concurrency)


if __name__ == "__main__":
    level = os.environ.get("BENCH_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
