"""Chaos harness: real ``manage.py worker`` processes, random SIGKILLs and an immediate restart of
PostgreSQL, then an audit of every job and of its effect.

One scenario (:class:`Chaos`, sized by :class:`ChaosPlan`) on a cluster of its own
(:mod:`tests.restartable_postgres`):

- ``jobs`` jobs of ``tests.chaos_effect*`` (``tests/sample_tasks.py``) spread over the ``dataset``,
  ``default`` and ``mail`` queues: most are instant, about 1 % sleep 1-3 s before writing (so that
  kills land mid-job) and about 1 % fail transiently on their first attempt. Each run writes one
  ``chaos_effects`` row (key, job id, the worker's pid, queue, time) in its job's transaction; the
  table has no unique key, so an effect committed twice shows as two rows. A share of the jobs is
  deferred before the workers start, the rest by a feeder thread in batches (``group``, one
  transaction each) spread over the chaos period, so that jobs keep waiting throughout.
- ``workers`` worker processes serving every queue (``WORKER_HEARTBEAT_INTERVAL=1``,
  ``WORKER_STALLED_AFTER=5``, ``WORKER_RECOVERY_INTERVAL=2``, ``WORKER_MAX_LOST_RUNS=50``). A killer
  SIGKILLs a random worker every ``kill_interval`` seconds (random) and starts a replacement at
  once, ``kills`` times. A worker that exits without being killed is recorded (a failure) and
  replaced too.
- ``restarts`` times (once by default, halfway through the kills) PostgreSQL is stopped with
  ``pg_ctl stop -m immediate`` and started again at once on the same socket, once every live
  worker serves (so that ``workers`` of them live through it). The feeder pauses
  around it (a defer whose COMMIT is cut off could not be told apart from a lost job), and the
  killer pauses for ``resume_limit`` seconds after it, so that every worker alive across the
  restart (a *survivor*) has that long to take jobs again. A survivor's resume time runs from
  the server's clock when it accepted a connection again to the ``written_at`` of the first
  effect that worker committed afterwards.
- Then the harness waits until no job is ``todo`` or ``doing`` (or ``drain_timeout``), stops the
  workers with SIGTERM, and audits: lost (jobs neither ``succeeded`` nor ``failed`` at the end,
  or missing), failed, duplicated effects (keys with several rows), succeeded jobs without their
  row, rows of jobs that did not succeed, the resume time of every survivor (late only counts
  when jobs were waiting meanwhile), and workers that exited on their own. A survivor late on one
  queue only, and a slow stop, are noted without failing the scenario.

:meth:`ChaosReport.problems` lists every violation; :meth:`ChaosReport.table` prints the figures.
``tests/acceptance/test_chaos.py`` runs a CI size and (``CHAOS_FULL=1``) the full size;
``bench/chaos.py`` runs any size from the command line.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests import sample_tasks
from tests.restartable_postgres import RestartablePostgres
from worker import db, runtime
from worker.config import Settings
from worker.jobs import CeleryTask, group

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The chaos tasks, one per queue.
CHAOS_TASKS: tuple[CeleryTask, ...] = (
    sample_tasks.chaos_effect,
    sample_tasks.chaos_effect_default,
    sample_tasks.chaos_effect_mail,
)
#: Their queues.
CHAOS_QUEUES = tuple(str(task.queue) for task in CHAOS_TASKS)
#: Settings of every worker process of the scenario.
WORKER_ENV = {
    "WORKER_IMPORT_PATHS": "tests.sample_tasks",
    "WORKER_HEARTBEAT_INTERVAL": "1",
    "WORKER_STALLED_AFTER": "5",
    "WORKER_RECOVERY_INTERVAL": "2",
    "WORKER_MAX_LOST_RUNS": "50",
    "WORKER_SHUTDOWN_TIMEOUT": "10",
}
#: What a worker logs once it is serving its queues.
READY_LINE = "worker started on"
#: Seconds a worker may take to start before the scenario gives up.
START_TIMEOUT = 60.0
#: Seconds a worker may take to exit after SIGTERM (shutdown timeout + grace + margin).
STOP_TIMEOUT = 30.0
#: Seconds between two feeder batches.
FEED_STEP = 0.25
#: Seconds between two looks at the worker processes.
WATCH_STEP = 0.1
#: Seconds a ready job must have waited (with the server up) to show that nobody took it: a
#: survivor that took no job of its queue meanwhile is deaf to that queue, not merely outrun.
STALE_AFTER = 2.0
#: Jobs per survivor run by the others within the limit that prove there was work to take.
JOBS_PER_SURVIVOR = 10
#: A worker taking longer than this to stop after SIGTERM is noted (the longest job lasts 3 s).
STOP_NOTE_AFTER = 5.0

EFFECTS_DDL = """
CREATE TABLE IF NOT EXISTS chaos_effects (
    job_key text NOT NULL,
    job_id bigint NOT NULL,
    pid int NOT NULL,
    queue_name text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""
#: Per queue: jobs ready to run, and how long the oldest has been ready since ``:back``.
WAITING_JOBS = """
SELECT job.queue_name, count(*),
       extract(epoch FROM now() - min(greatest(job.scheduled_at, last.at, :back)))
  FROM procrastinate_jobs AS job
 CROSS JOIN LATERAL (SELECT max(at) AS at FROM procrastinate_events WHERE job_id = job.id) AS last
 WHERE job.status = 'todo' AND (job.scheduled_at IS NULL OR job.scheduled_at <= now())
 GROUP BY job.queue_name
"""
UNFINISHED_JOBS = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"


@dataclass(frozen=True, kw_only=True)
class ChaosPlan:
    """The size and pace of one scenario."""

    jobs: int = 2000
    kills: int = 50
    workers: int = 3
    restarts: int = 1
    #: Share of jobs that sleep 1-3 s before writing (at least one).
    long_share: float = 0.01
    #: Share of jobs that fail transiently on their first attempt (at least one).
    fail_once_share: float = 0.01
    #: Share of jobs deferred before the workers start; the rest is fed during the kills.
    backlog_share: float = 0.2
    #: Seconds between two kills, drawn uniformly.
    kill_interval: tuple[float, float] = (0.5, 2.0)
    #: Seconds a survivor of a restart may take to run a job again.
    resume_limit: float = 10.0
    #: Seconds the jobs may take to finish once the chaos is over.
    drain_timeout: float = 120.0
    seed: int | None = None

    @property
    def chaos_seconds(self) -> float:
        """Expected length of the kill period (the feeder spreads the jobs over it)."""
        low, high = self.kill_interval
        return max(5.0, self.kills * (low + high) / 2)


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """One job to defer: its task (hence queue), key and behaviour."""

    task: CeleryTask
    key: str
    seconds: float = 0.0
    fail_once: bool = False


def job_specs(plan: ChaosPlan, rng: random.Random) -> list[JobSpec]:
    """``plan.jobs`` jobs round-robin over the three queues, a few long, a few failing once."""
    count = plan.jobs
    long_ones = set(rng.sample(range(count), min(count, max(1, round(count * plan.long_share)))))
    failing = set(rng.sample(range(count), min(count, max(1, round(count * plan.fail_once_share)))))
    specs = [
        JobSpec(
            task=CHAOS_TASKS[index % len(CHAOS_TASKS)],
            key=f"chaos-{index:06d}",
            seconds=round(rng.uniform(1.0, 3.0), 2) if index in long_ones else 0.0,
            fail_once=index in failing,
        )
        for index in range(count)
    ]
    rng.shuffle(specs)
    return specs


def worker_env(database_url: str) -> dict[str, str]:
    """The environment of a worker process: ours scrubbed of every setting, then the scenario's."""
    ours = {f.alias for f in Settings.model_fields.values() if f.alias}
    base = {key: value for key, value in os.environ.items() if key not in ours}
    return {**base, **WORKER_ENV, "DATABASE_URL": database_url}


class ChaosWorker:
    """One ``python manage.py worker`` subprocess; its output goes to a log file."""

    def __init__(self, number: int, env: dict[str, str], log_dir: Path) -> None:
        self.number = number
        self.started_at = time.monotonic()
        log = log_dir / f"worker-{number:03d}.log"
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "manage.py"), "worker"],
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.process.pid
        self.log = log.rename(log_dir / f"worker-{number:03d}-pid{self.pid}.log")
        self.killed = False
        self.stopped = False
        self._ready = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        """Whether it logged that it serves its queues (remembered once seen)."""
        if not self._ready:
            self._ready = READY_LINE in self.output()
        return self._ready

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 6) -> str:
        """The last log lines (records and the final ``manage.py: error``, no tracebacks)."""
        records = [
            line[:300]
            for line in self.output().splitlines()
            if _RECORD.match(line) or line.startswith("manage.py")
        ]
        return "\n".join(records[-lines:])

    def kill(self) -> None:
        """SIGKILL and reap (by this process's own pid)."""
        self.killed = True
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def terminate(self) -> None:
        self.stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)


@dataclass(frozen=True, kw_only=True)
class WorkerExit:
    """A worker process that ended without being killed or asked to stop."""

    pid: int
    returncode: int
    #: Seconds since the chaos began.
    at: float
    after_restart: bool
    #: Whether it had started serving (else it died while starting up).
    served: bool
    tail: str


@dataclass(kw_only=True)
class Resume:
    """How long a survivor of a restart took to commit a job again (``None``: never)."""

    pid: int
    seconds: float | None
    #: First commit per queue, seconds after the restart (absent: none on that queue).
    per_queue: dict[str, float] = field(default_factory=dict)
    #: Effects this worker committed after the restart, over the rest of the run.
    jobs_after: int = 0


@dataclass(kw_only=True)
class RestartFigures:
    """One immediate restart: how long the server was down, who survived it, who resumed."""

    #: Seconds from ``pg_ctl stop -m immediate`` to a connection accepted again.
    downtime: float
    #: Server clock when it accepted a connection again.
    back_at: datetime.datetime
    #: Seconds since the chaos began.
    at: float
    survivors: list[int]
    #: Most jobs seen ready to run at once, by queue, while the survivors had to resume.
    max_waiting: dict[str, int] = field(default_factory=dict)
    #: Longest a ready job was seen waiting meanwhile (server up), by queue.
    max_wait: dict[str, float] = field(default_factory=dict)
    #: Jobs committed by any worker within ``resume_limit`` of the server being back.
    jobs_in_window: int = 0
    resumes: list[Resume] = field(default_factory=list)

    def had_work(self) -> bool:
        """Whether a survivor had something to take: jobs were seen waiting, or the others
        committed enough jobs meanwhile that a listening worker gets its share."""
        shared = JOBS_PER_SURVIVOR * max(1, len(self.survivors))
        return any(self.max_waiting.values()) or self.jobs_in_window >= shared


@dataclass(kw_only=True)
class ChaosReport:
    """Figures of one scenario; :meth:`problems` is empty when the runtime held."""

    plan: ChaosPlan
    seed: int
    jobs: int = 0
    kills: int = 0
    restarts: list[RestartFigures] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    #: Keys of jobs that neither succeeded nor failed: still ``todo``/``doing`` at the end,
    #: cancelled or aborted, or whose job row is missing.
    lost: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: Keys with more than one effect row.
    duplicated: list[str] = field(default_factory=list)
    #: Keys of succeeded jobs without an effect row.
    lost_effects: list[str] = field(default_factory=list)
    #: Keys of jobs that did not succeed but whose effect row committed.
    stray_effects: list[str] = field(default_factory=list)
    runs: int = 0
    max_attempts: int = 0
    exits: list[WorkerExit] = field(default_factory=list)
    #: Exit codes after the final SIGTERM, by pid (``None``: ignored SIGTERM and was killed).
    stop_codes: dict[int, int | None] = field(default_factory=dict)
    #: Seconds each worker took to exit after the final SIGTERM, by pid.
    stop_seconds: dict[int, float] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    #: (occurrences, example) of ERROR/CRITICAL log lines of the workers, by kind.
    log_errors: list[tuple[int, str]] = field(default_factory=list)
    log_dir: Path | None = None
    drained: bool = False

    def problems(self) -> list[str]:
        """Every violation of: 0 lost, 0 failed, 0 duplicated, survivors resume in time, no
        worker exits on its own, every worker stops on SIGTERM."""
        found = [
            f"{len(keys)} {what}: {', '.join(keys[:10])}"
            for keys, what in (
                (self.lost, "job(s) lost (neither succeeded nor failed)"),
                (self.failed, "job(s) failed"),
                (self.duplicated, "key(s) with duplicated effects"),
                (self.lost_effects, "succeeded job(s) without their effect"),
                (self.stray_effects, "effect(s) of jobs that did not succeed"),
            )
            if keys
        ]
        if not self.drained:
            found.append(f"jobs still unfinished after {self.plan.drain_timeout:.0f} s")
        found.extend(self._resume_problems())
        found.extend(
            f"worker {e.pid} exited on its own with code {e.returncode} at t={e.at:.1f} s"
            f"{' while starting up' if not e.served else ''}"
            f"{' (after the restart)' if e.after_restart else ''}"
            for e in self.exits
        )
        found.extend(
            f"worker {pid} {'ignored SIGTERM' if code is None else f'stopped with code {code}'}"
            for pid, code in self.stop_codes.items()
            if code != 0
        )
        return found

    def _resume_problems(self) -> list[str]:
        """A survivor must commit a job within the limit when jobs were waiting meanwhile."""
        limit = self.plan.resume_limit
        found = []
        for number, restart in enumerate(self.restarts, 1):
            if len(restart.survivors) < self.plan.workers:
                found.append(
                    f"restart {number}: only {len(restart.survivors)} worker(s) were serving "
                    f"across it, {self.plan.workers} expected"
                )
            if not restart.had_work():
                continue  # nothing to take: a survivor that took nothing was idle, not deaf
            for r in restart.resumes:
                if r.seconds is not None and r.seconds <= limit:
                    continue
                first = "never" if r.seconds is None else f"first after {r.seconds:.1f} s"
                found.append(
                    f"restart {number}: surviving worker {r.pid} took no job within "
                    f"{limit:.0f} s ({first}); meanwhile {restart.jobs_in_window} job(s) ran "
                    f"elsewhere, jobs waiting: {_waiting(restart) or 'none seen'}"
                )
        return found

    def notes(self) -> list[str]:
        """Oddities outside the criteria, worth a look: a survivor that took no job of one queue
        within the limit while a job of that queue waited ``STALE_AFTER`` s (each queue has its
        own worker in the process, which may go deaf alone), and slow stops."""
        limit = self.plan.resume_limit
        exited = {e.pid for e in self.exits}  # already a problem: its queues say nothing more
        notes = [
            f"restart {number}: surviving worker {r.pid} took no {queue} job within "
            f"{limit:.0f} s although one waited {restart.max_wait[queue]:.1f} s"
            for number, restart in enumerate(self.restarts, 1)
            for r in restart.resumes
            if r.pid not in exited
            for queue in CHAOS_QUEUES
            if restart.max_wait.get(queue, 0.0) >= STALE_AFTER
            and ((first := r.per_queue.get(queue)) is None or first > limit)
        ]
        slow = {pid: s for pid, s in self.stop_seconds.items() if s > STOP_NOTE_AFTER}
        notes.extend(
            f"worker {pid} took {seconds:.1f} s to stop after SIGTERM (its jobs last 3 s at most)"
            for pid, seconds in sorted(slow.items())
        )
        return notes

    def table(self) -> str:
        """The figures, one per line, then the resume times and anything that went wrong."""
        d = self.durations
        rows = [
            ("jobs", f"{self.jobs} (dataset/default/mail, seed {self.seed})"),
            ("workers", f"{self.plan.workers} at a time"),
            ("kills (SIGKILL)", str(self.kills)),
            ("Postgres restarts (immediate)", str(len(self.restarts))),
            ("lost", str(len(self.lost))),
            ("failed", str(len(self.failed))),
            ("duplicated effects", str(len(self.duplicated))),
            ("succeeded without effect", str(len(self.lost_effects))),
            ("effects of unsucceeded jobs", str(len(self.stray_effects))),
            ("job statuses", ", ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))),
            ("attempts (sum)", f"{self.runs} (max {self.max_attempts} for one job)"),
            ("workers exited on their own", str(len(self.exits))),
            ("durations (s)", ", ".join(f"{k} {v:.1f}" for k, v in d.items())),
        ]
        for number, restart in enumerate(self.restarts, 1):
            resumes = ", ".join(
                f"{r.pid}: {'never' if r.seconds is None else f'{r.seconds:.2f} s'}"
                for r in restart.resumes
            )
            rows.append((f"restart {number} downtime", f"{restart.downtime:.2f} s"))
            rows.append((f"restart {number} resume per survivor", resumes or "no survivor"))
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        lines.extend(self._detail_lines())
        return "\n".join(lines)

    def _detail_lines(self) -> list[str]:
        lines = []
        for number, restart in enumerate(self.restarts, 1):
            lines.append(
                f"restart {number} at t={restart.at:.1f} s, back at {restart.back_at:%H:%M:%S.%f}"
                f"; within {self.plan.resume_limit:.0f} s: {restart.jobs_in_window} job(s) ran, "
                f"jobs waiting (most, longest wait): {_waiting(restart) or 'none seen'}"
            )
            for r in restart.resumes:
                queues = ", ".join(f"{q} {s:.2f} s" for q, s in sorted(r.per_queue.items()))
                first = "never" if r.seconds is None else f"{r.seconds:.2f} s"
                lines.append(
                    f"  worker {r.pid}: first job {first}; by queue: {queues or '-'}; "
                    f"{r.jobs_after} job(s) after the restart"
                )
        for e in self.exits:
            lines.append(f"worker {e.pid} exited {e.returncode} at t={e.at:.1f} s; its log ends:")
            lines.extend(f"  | {line}" for line in e.tail.splitlines())
        if self.log_errors:
            lines.append("ERROR/CRITICAL lines in the workers' logs (count, example):")
            lines.extend(f"  {count:>5}  {example}" for count, example in self.log_errors)
        problems = self.problems()
        lines.append("problems: " + ("none" if not problems else ""))
        lines.extend(f"  - {p}" for p in problems)
        lines.extend(f"note: {note}" for note in self.notes())
        if self.log_dir is not None:
            lines.append(f"worker logs: {self.log_dir}")
        return lines


class HarnessError(RuntimeError):
    """The harness itself could not run the scenario (not a finding about the runtime)."""


class Chaos:
    """One scenario on ``server`` (started, database ``chaos`` created and migrated by it)."""

    def __init__(
        self,
        server: RestartablePostgres,
        plan: ChaosPlan,
        log_dir: Path,
        *,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.server = server
        self.plan = plan
        self.log_dir = log_dir
        self.echo = echo or (lambda message: None)
        seed = plan.seed if plan.seed is not None else random.randrange(2**32)
        self.rng = random.Random(seed)
        self.report = ChaosReport(plan=plan, seed=seed, log_dir=log_dir)
        self.workers: list[ChaosWorker] = []
        self.keys_by_id: dict[int, str] = {}
        self._feed_lock = threading.Lock()
        self._feed_error: BaseException | None = None
        self._stop_feeding = threading.Event()
        self._numbers = iter(range(1, 10**6))
        self._t0 = time.monotonic()
        self._url = ""
        self._engine: sa.Engine | None = None
        self._replace = True

    # -- the scenario -------------------------------------------------------------------------

    def run(self) -> ChaosReport:
        """Run the scenario, stop every worker it started, and return the figures."""
        began = time.monotonic()
        self._url = self.server.create_database("chaos")
        self._engine = db.make_engine(self._url, pool_size=2)
        with self._engine.begin() as connection:
            connection.execute(sa.text(EFFECTS_DDL))
        runtime.setup(self._url, pool_size=2)
        try:
            self._scenario(began)
            self.report.durations["total"] = time.monotonic() - began
            return self.report
        finally:
            self._stop_feeding.set()
            for worker in self.workers:
                worker.kill()
            runtime.teardown()
            self._engine.dispose()

    def _scenario(self, began: float) -> None:
        plan = self.plan
        specs = job_specs(plan, self.rng)
        backlog = int(len(specs) * plan.backlog_share)
        self._defer(specs[:backlog])
        for _ in range(plan.workers):
            self._start_worker()
        self._wait_ready(self.workers)
        self._t0 = time.monotonic()
        self.report.durations["setup"] = self._t0 - began
        self.echo(f"{plan.workers} workers up, {backlog} jobs waiting; chaos begins")
        feeder = threading.Thread(target=self._feed, args=(specs[backlog:],), daemon=True)
        feeder.start()
        self._chaos()
        while feeder.is_alive():
            self._watch(WATCH_STEP)
        self._check_feeder()
        self.report.jobs = len(self.keys_by_id)
        self.report.durations["chaos"] = time.monotonic() - self._t0
        drain_began = time.monotonic()
        self.report.drained = self._drain()
        self.report.durations["drain"] = time.monotonic() - drain_began
        stop_began = time.monotonic()
        self._stop_workers()
        self.report.durations["stop"] = time.monotonic() - stop_began
        self._audit()

    def _chaos(self) -> None:
        plan = self.plan
        restart_points = {plan.kills * (n + 1) // (plan.restarts + 1) for n in range(plan.restarts)}
        restarts_left = plan.restarts
        for done in range(plan.kills + 1):
            if done in restart_points and restarts_left:
                self._restart()
                restarts_left -= 1
            if done == plan.kills:
                break
            self._watch(self.rng.uniform(*plan.kill_interval))
            self._kill_one()
        for _ in range(restarts_left):
            self._restart()

    # -- deferring ----------------------------------------------------------------------------

    def _defer(self, specs: Sequence[JobSpec]) -> None:
        by_task = sorted(specs, key=lambda spec: spec.task.name)
        signatures = [
            spec.task.s(key=spec.key, seconds=spec.seconds, fail_once=spec.fail_once)
            for spec in by_task
        ]
        results = group(signatures).apply_async()  # one transaction, batched per task
        for spec, result in zip(by_task, results, strict=True):
            self.keys_by_id[int(result.id)] = spec.key

    def _feed(self, specs: Sequence[JobSpec]) -> None:
        """Defer ``specs`` in batches spread evenly over the expected chaos period."""
        try:
            steps = max(1, int(self.plan.chaos_seconds / FEED_STEP))
            size = -(-len(specs) // steps)
            for start in range(0, len(specs), size):
                with self._feed_lock:
                    if self._stop_feeding.is_set():
                        return
                    self._defer(specs[start : start + size])
                time.sleep(FEED_STEP)
        except BaseException as exc:
            self._feed_error = exc

    def _check_feeder(self) -> None:
        if self._feed_error is not None:
            raise HarnessError(f"the feeder failed: {self._feed_error!r}") from self._feed_error

    # -- workers ------------------------------------------------------------------------------

    def _start_worker(self) -> ChaosWorker:
        worker = ChaosWorker(next(self._numbers), worker_env(self._url), self.log_dir)
        self.workers.append(worker)
        return worker

    def _wait_ready(self, workers: Sequence[ChaosWorker]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not all(w.ready() for w in workers):
            for w in workers:
                if not w.alive():
                    raise HarnessError(f"worker {w.pid} exited at start-up:\n{w.tail(40)}")
            if time.monotonic() > deadline:
                raise HarnessError(f"workers not ready after {START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def _alive(self) -> list[ChaosWorker]:
        return [w for w in self.workers if not w.killed and not w.stopped and w.alive()]

    def _watch(self, seconds: float) -> None:
        """Wait ``seconds``, replacing any worker that exits on its own (and recording it)."""
        deadline = time.monotonic() + seconds
        while True:
            self._check_feeder()
            for worker in self.workers:
                if worker.killed or worker.stopped or worker.alive():
                    continue
                self._record_exit(worker)
            if time.monotonic() >= deadline:
                return
            time.sleep(min(WATCH_STEP, max(0.0, deadline - time.monotonic())))

    def _record_exit(self, worker: ChaosWorker) -> None:
        worker.stopped = True  # seen: not recorded twice
        at = time.monotonic() - self._t0
        after = bool(self.report.restarts) and at >= self.report.restarts[0].at
        self.report.exits.append(
            WorkerExit(
                pid=worker.pid,
                returncode=worker.process.returncode,
                at=at,
                after_restart=after,
                served=worker.ready(),
                tail=worker.tail(),
            )
        )
        self.echo(f"worker {worker.pid} exited on its own ({worker.process.returncode})")
        if self._replace:
            self._start_worker()

    def _kill_one(self) -> None:
        alive = self._alive()
        candidates = [w for w in alive if w.ready()] or alive
        if not candidates:
            return
        victim = self.rng.choice(candidates)
        victim.kill()
        self.report.kills += 1
        self._start_worker()

    def _stop_workers(self) -> None:
        # a replacement still importing would die of SIGTERM before installing its handler
        self._replace = False
        self._wait_all_ready()
        running = self._alive()
        sent = time.monotonic()
        for worker in running:
            worker.terminate()
        while running and time.monotonic() < sent + STOP_TIMEOUT:
            for worker in [w for w in running if not w.alive()]:
                self.report.stop_seconds[worker.pid] = time.monotonic() - sent
                self.report.stop_codes[worker.pid] = worker.process.returncode
                running.remove(worker)
            time.sleep(0.05)
        for worker in running:
            worker.process.send_signal(signal.SIGUSR1)  # manage.py dumps its threads' stacks
            time.sleep(1)
            worker.kill()
            self.report.stop_codes[worker.pid] = None

    def _wait_all_ready(self) -> None:
        """Wait (bounded) until every live worker serves, recording any that exits meanwhile."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and not all(w.ready() for w in self._alive()):
            self._watch(WATCH_STEP)

    # -- the restart --------------------------------------------------------------------------

    def _restart(self) -> None:
        # every worker serving when the server goes down, so that each has to show it resumes
        self._wait_all_ready()
        with self._feed_lock:
            # workers still importing have not connected yet: nothing to survive
            survivors = [w.pid for w in self._alive() if w.ready()]
            down_at, up_at, back_at = self._restart_server()
        figures = RestartFigures(
            downtime=up_at - down_at,
            back_at=back_at,
            at=down_at - self._t0,
            survivors=survivors,
        )
        self.report.restarts.append(figures)
        self.echo(f"Postgres restarted immediately ({figures.downtime:.2f} s down)")
        # no kill while the survivors have to show they took jobs again
        window_ends = up_at + self.plan.resume_limit + 1.0
        while time.monotonic() < window_ends:
            for queue, count, wait in self._rows(WAITING_JOBS, back=back_at):
                figures.max_waiting[queue] = max(figures.max_waiting.get(queue, 0), count)
                figures.max_wait[queue] = max(figures.max_wait.get(queue, 0.0), float(wait))
            self._watch(0.5)

    def _restart_server(self) -> tuple[float, float, datetime.datetime]:
        down_at, up_at = self.server.restart_immediately()
        back_at = self._scalar("SELECT clock_timestamp()")
        if back_at is None:
            raise HarnessError("the server did not answer after its restart")
        return down_at, up_at, back_at

    # -- watching the jobs --------------------------------------------------------------------

    def _scalar(self, query: str, **params: Any) -> Any:
        """One value, or ``None`` if the server cannot be reached right now."""
        assert self._engine is not None
        try:
            with self._engine.connect() as connection:
                return connection.execute(sa.text(query), params).scalar_one()
        except sa.exc.OperationalError:
            return None

    def _rows(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows, or none if the server cannot be reached right now."""
        assert self._engine is not None
        try:
            with self._engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sa.text(query), params)]
        except sa.exc.OperationalError:
            return []

    def _drain(self) -> bool:
        deadline = time.monotonic() + self.plan.drain_timeout
        while time.monotonic() < deadline:
            if self._scalar(UNFINISHED_JOBS) == 0:
                return True
            self._watch(0.5)
        return False

    # -- audit --------------------------------------------------------------------------------

    def _audit(self) -> None:
        assert self._engine is not None
        with self._engine.connect() as connection:
            jobs = connection.execute(
                sa.text("SELECT id, status, attempts FROM procrastinate_jobs WHERE id = ANY(:ids)"),
                {"ids": list(self.keys_by_id)},
            ).all()
            effects: dict[str, int] = dict(
                connection.execute(
                    sa.text("SELECT job_key, count(*) FROM chaos_effects GROUP BY job_key")
                ).all()
            )
        self._audit_jobs(jobs, effects)
        for restart in self.report.restarts:
            restart.resumes = self._resumes(restart)
        self.report.log_errors = log_errors(w.log for w in self.workers)

    def _audit_jobs(self, jobs: Sequence[sa.Row[Any]], effects: dict[str, int]) -> None:
        report = self.report
        status_of = {self.keys_by_id[row.id]: row.status for row in jobs}
        report.statuses = dict(collections.Counter(status_of.values()))
        report.runs = sum(row.attempts for row in jobs)
        report.max_attempts = max((row.attempts for row in jobs), default=0)
        keys = sorted(self.keys_by_id.values())
        report.lost = [k for k in keys if status_of.get(k) not in ("succeeded", "failed")]
        report.failed = [k for k in keys if status_of.get(k) == "failed"]
        report.duplicated = sorted(k for k, n in effects.items() if n > 1)
        report.lost_effects = [
            k for k in keys if status_of.get(k) == "succeeded" and k not in effects
        ]
        report.stray_effects = [k for k in effects if status_of.get(k) != "succeeded"]

    def _resumes(self, restart: RestartFigures) -> list[Resume]:
        assert self._engine is not None
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT pid, queue_name, count(*) AS jobs, "
                    "       extract(epoch FROM min(written_at) - :back) AS first "
                    "  FROM chaos_effects "
                    " WHERE written_at >= :back AND pid = ANY(:pids) "
                    " GROUP BY pid, queue_name"
                ),
                {"back": restart.back_at, "pids": restart.survivors},
            ).all()
            restart.jobs_in_window = connection.execute(
                sa.text(
                    "SELECT count(*) FROM chaos_effects WHERE written_at >= :back "
                    "AND written_at < :back + make_interval(secs => :limit)"
                ),
                {"back": restart.back_at, "limit": self.plan.resume_limit},
            ).scalar_one()
        resumes = {pid: Resume(pid=pid, seconds=None) for pid in restart.survivors}
        for row in rows:
            resume = resumes[row.pid]
            resume.per_queue[row.queue_name] = float(row.first)
            resume.jobs_after += row.jobs
            resume.seconds = min(resume.per_queue.values())
        return list(resumes.values())


def _waiting(restart: RestartFigures) -> str:
    return ", ".join(
        f"{queue} {count} ({restart.max_wait.get(queue, 0.0):.1f} s)"
        for queue, count in sorted(restart.max_waiting.items())
    )


_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
_NUMBERS = re.compile(r"\d+")
_LEVEL = re.compile(r" (ERROR|CRITICAL) ")


def log_errors(logs: Iterator[Path] | Sequence[Path], limit: int = 12) -> list[tuple[int, str]]:
    """ERROR/CRITICAL lines of the logs grouped by kind (numbers blurred), most frequent first."""
    counts: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    for log in logs:
        with contextlib.suppress(FileNotFoundError):
            for line in log.read_text(errors="replace").splitlines():
                match = _LEVEL.search(line)
                if match is None:
                    continue
                message = line[match.start() + 1 :]
                kind = _NUMBERS.sub("N", message)[:140]
                counts[kind] += 1
                examples.setdefault(kind, message[:300])
    return [(count, examples[kind]) for kind, count in counts.most_common(limit)]
