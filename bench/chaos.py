"""The chaos scenario of ``tests/chaos.py`` at any size, from the command line.

    python bench/chaos.py [--jobs 2000] [--kills 50] [--workers 3] [--restarts 1] [--seed N]
                          [--keep-logs]

Starts a PostgreSQL cluster of its own in a temporary directory (never the one in ``./.data`` nor
``DATABASE_URL``: it is crashed on purpose), runs real ``manage.py worker`` processes under random
SIGKILLs and an immediate restart of PostgreSQL, then prints the figures: jobs, kills, restarts,
lost, failed, duplicated effects, each surviving worker's time to take jobs again after the
restart, durations, and the errors the workers logged. Exits 1 when any criterion was violated
(0 lost, 0 failed, 0 duplicated, every survivor resumes within 10 s, no worker exits on its own).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.chaos import Chaos, ChaosPlan  # noqa: E402
from tests.restartable_postgres import restartable_postgres  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the workers' logs (path printed at the end)"
    )
    args = parser.parse_args()
    plan = ChaosPlan(
        jobs=args.jobs,
        kills=args.kills,
        workers=args.workers,
        restarts=args.restarts,
        seed=args.seed,
        drain_timeout=args.drain_timeout,
    )
    log_dir = Path(tempfile.mkdtemp(prefix="chaos-logs-"))
    began = time.monotonic()

    def echo(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {message}", flush=True)

    try:
        with restartable_postgres() as server:
            echo(f"chaos cluster up; {plan.jobs} jobs, {plan.kills} kills, {plan.workers} workers")
            report = Chaos(server, plan, log_dir, echo=echo).run()
        if not args.keep_logs:
            report.log_dir = None
        print(report.table())
        return 1 if report.problems() else 0
    finally:
        if not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
