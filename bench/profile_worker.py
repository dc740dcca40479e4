"""Where a worker's time goes: py-spy samples a ``manage.py worker`` draining no-op jobs.

    python bench/profile_worker.py [--task noop|one-row] [--jobs 20000] [--concurrency 10]
                                   [--seconds 8] [--gil]

Prefills the jobs, starts the worker, samples it with ``py-spy record --format raw`` (py-spy is
in the ``bench`` extra; sampling needs root or ptrace rights) while it drains, and prints the jobs/s
over the sampled window and the functions that hold the most samples, by own time and by
inclusive time (idle threads, waiting in ``select``/``epoll``/locks, are left out). ``--gil`` keeps
only the samples of the thread holding the GIL: the worker's Python CPU, which bounds its jobs/s.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.noop_tasks import BENCH_ROWS_DDL, noop, one_row  # noqa: E402
from worker import runtime, schema  # noqa: E402
from worker.embedded import EmbeddedPostgres  # noqa: E402
from worker.jobs import deferring  # noqa: E402

#: Frames of threads that are waiting, not working.
IDLE = ("select", "epoll", "poll (", "wait (threading", "_worker (concurrent", "acquire", "sleep")


def done_count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
            ).scalar_one()
        )


def summarize(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        if any(marker in frames[-1] for marker in IDLE):
            continue
        count = int(count_text)
        total += count
        own[frames[-1]] += count
        for frame in set(frames[1:]):
            inclusive[frame] += count
    print(f"\n{total} busy samples")
    print("\nown time:")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("\ninclusive time:")
    for frame, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--task", choices=("noop", "one-row"), default="noop")
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    args = parser.parse_args()
    task = noop if args.task == "noop" else one_row
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")

    with tempfile.TemporaryDirectory(prefix="profile-") as root:
        with EmbeddedPostgres(Path(root) / "data").attached() as url:
            engine = schema.engine_for(url)
            schema.upgrade(engine)
            runtime.setup(url)
            with engine.begin() as connection:
                connection.execute(sa.text(BENCH_ROWS_DDL))
            for _ in range(args.jobs // 1000):
                deferring.defer_signatures([(task, {}, task.defer_options({}))] * 1000)
            log = Path(root) / "worker.log"
            with log.open("w") as handle:
                worker = subprocess.Popen(
                    [sys.executable, "manage.py", "worker", "--queues", "default",
                     "--concurrency", f"default={args.concurrency}"],
                    cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env={**os.environ, "DATABASE_URL": url,
                         "WORKER_IMPORT_PATHS": "bench.noop_tasks"},
                )  # fmt: skip
            try:
                while done_count(engine) == 0:
                    time.sleep(0.01)
                raw = Path(root) / "profile.txt"
                before, start = done_count(engine), time.monotonic()
                subprocess.run(
                    ["py-spy", "record", "--pid", str(worker.pid), "--format", "raw",
                     "--duration", str(int(args.seconds)), "--rate", "200", "--output", str(raw),
                     "--nonblocking", *(["--gil"] if args.gil else [])],
                    check=True, capture_output=True,
                )  # fmt: skip
                after, elapsed = done_count(engine), time.monotonic() - start
                print(f"{(after - before) / elapsed:.0f} jobs/s while sampled (py-spy slows it)")
                summarize(raw, args.top)
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=60)
                runtime.teardown()
                engine.dispose()


if __name__ == "__main__":
    main()
