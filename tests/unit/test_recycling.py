"""The recycling policy without a database: the job cap, the paced memory reads, the trigger."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from worker.cli import build_parser
from worker.config import ConfigError, Settings
from worker.jobs import recycling
from worker.jobs.recycling import MIB, MemoryGauge, RecyclePolicy, Recycler
from worker.server import WorkerPlan


class FakeProcess:
    """A resident size that jobs grow, and a clock that only moves when told."""

    def __init__(self, rss_mib: float) -> None:
        self.rss = int(rss_mib * MIB)
        self.time = 0.0
        self.reads = 0

    def read(self) -> int:
        self.reads += 1
        return self.rss

    def clock(self) -> float:
        return self.time


def recycler(policy: RecyclePolicy, fake: FakeProcess | None = None) -> tuple[Recycler, list[int]]:
    calls: list[int] = []
    gauge = None
    if fake is not None and policy.max_memory_mb is not None:
        gauge = MemoryGauge(policy.max_memory_mb * MIB, read=fake.read, clock=fake.clock)
    return Recycler(policy, on_due=lambda: calls.append(1), gauge=gauge), calls


def test_limits_are_off_by_default_and_validated_at_start_up() -> None:
    assert (Settings().max_jobs, Settings().max_memory_mb) == (None, None)
    settings = Settings.from_env({"WORKER_MAX_JOBS": "500", "WORKER_MAX_MEMORY_MB": "2048"})
    assert WorkerPlan.build(settings, queues=["dataset"], overrides={}).recycle == RecyclePolicy(
        max_jobs=500, max_memory_mb=2048
    )
    with pytest.raises(ConfigError, match=r"^invalid configuration: WORKER_MAX_JOBS: .*'0'"):
        Settings.from_env({"WORKER_MAX_JOBS": "0"})
    with pytest.raises(ConfigError, match=r"WORKER_MAX_MEMORY_MB: .*'lots'"):
        Settings.from_env({"WORKER_MAX_MEMORY_MB": "lots"})


@pytest.mark.parametrize("value", ["0", "-3", "x", "1.5"])
def test_the_flags_refuse_what_is_not_a_whole_number_of_at_least_one(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for option in ("--max-jobs", "--max-memory"):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(["worker", option, value])
        assert exit_info.value.code == 2
        assert f"{option} expects a whole number >= 1, got {value!r}" in capsys.readouterr().err


def test_without_limits_nothing_is_capped_or_ever_due() -> None:
    limitless, due = recycler(RecyclePolicy())

    assert limitless.reserve(8) == 8
    assert limitless.settle(8, 3) is False
    for _ in range(10_000):
        limitless.job_ended()
    assert (limitless.reason, due, limitless.jobs_run) == (None, [], 10_000)


def test_fetches_never_take_more_than_max_jobs_even_when_queues_fetch_at_once() -> None:
    capped, due = recycler(RecyclePolicy(max_jobs=10))

    first = capped.reserve(4)  # two queues' fetches in flight together
    second = capped.reserve(8)
    assert (first, second) == (4, 6)
    assert capped.reserve(1) == 0
    assert capped.settle(first, 1) is True, "3 slots given back for another fetch"
    assert capped.reserve(5) == 3
    capped.settle(second, 6)
    capped.settle(3, 3)
    assert capped.reserve(4) == 0, "10 jobs taken: no more fetching"

    for _ in range(9):
        capped.job_ended()
    assert due == [], "the process recycles once the last job it took has ended"
    capped.job_ended()
    assert due == [1]
    assert capped.reason == "it ran its 10 jobs (WORKER_MAX_JOBS=10)"
    capped.job_ended()
    assert due == [1], "due only once"


def test_memory_is_read_at_most_once_a_second_while_far_from_the_limit() -> None:
    fake = FakeProcess(rss_mib=100)
    watcher, due = recycler(RecyclePolicy(max_memory_mb=10_000), fake)
    watcher.job_ended()  # the first job tells how much a job takes
    reads = fake.reads

    for _ in range(1000):  # a thousand jobs in the same second, leaking nothing
        watcher.job_ended()
        watcher.check()
    assert fake.reads == reads

    fake.time += 1.0
    watcher.job_ended()
    watcher.check()
    assert fake.reads == reads + 1
    assert due == []


def test_a_leak_is_caught_by_the_job_that_crosses_the_limit_even_within_one_second() -> None:
    fake = FakeProcess(rss_mib=150)
    watcher, due = recycler(RecyclePolicy(max_memory_mb=250), fake)

    jobs = 0
    while not due:
        fake.rss += 16 * MIB  # each job leaks 16 MiB; the clock never reaches a second
        watcher.job_ended()
        jobs += 1

    assert fake.rss <= 250 * MIB + 16 * MIB, "over the limit by one job's allocation at most"
    assert fake.rss > 250 * MIB
    assert jobs == 7
    assert fake.reads < jobs + 1, "far from the limit, jobs ended without a read"
    assert watcher.reason is not None
    assert watcher.reason.startswith(
        "its resident memory is 262 MiB, over WORKER_MAX_MEMORY_MB=250"
    )


def test_a_process_that_starts_over_the_limit_runs_a_job_before_recycling_not_zero() -> None:
    fake = FakeProcess(rss_mib=300)
    watcher, due = recycler(RecyclePolicy(max_memory_mb=200), fake)

    fake.time += 5
    watcher.check()
    assert due == [], "an idle process over the limit would replace itself in a loop"
    warning = watcher.start_warning() or ""
    assert "WORKER_MAX_MEMORY_MB=200 is below this process's resident memory at start" in warning
    assert "(300 MiB): it recycles after every job" in warning
    watcher.job_ended()
    assert due == [1]


def test_usage_reports_jobs_memory_and_limits() -> None:
    fake = FakeProcess(rss_mib=120)
    watcher, _ = recycler(RecyclePolicy(max_jobs=50, max_memory_mb=400), fake)
    watcher.job_ended()

    assert watcher.usage() == {
        "jobs_run": 1, "rss_bytes": 120 * MIB, "max_jobs": 50, "max_memory_mb": 400,
    }  # fmt: skip
    assert Recycler(RecyclePolicy(), on_due=list).usage()["rss_bytes"] > 10 * MIB


@pytest.fixture
def signal_state() -> Iterator[None]:
    """The test process's signal mask and stop-signal handlers, restored afterwards."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    handlers = {signum: signal.getsignal(signum) for signum in recycling.STOP_SIGNALS}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    recycling._StopSignals.received = False


@pytest.mark.usefixtures("signal_state")
def test_respawn_execs_the_same_interpreter_command_line_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((path, argv, env))
        raise SystemExit(0)

    monkeypatch.setattr(recycling.os, "execve", fake_execve)
    argv = ["python3", "-X", "dev", "manage.py", "worker", "--max-jobs", "5"]
    monkeypatch.setattr(recycling.sys, "orig_argv", argv)
    with pytest.raises(SystemExit):
        recycling.respawn({"DATABASE_URL": "postgresql://x/y", "WORKER_MAX_JOBS": "5"})

    [(path, argv, env)] = calls
    assert path == recycling.sys.executable
    assert argv == [path, "-X", "dev", "manage.py", "worker", "--max-jobs", "5"]
    assert env == {"DATABASE_URL": "postgresql://x/y", "WORKER_MAX_JOBS": "5"}
    assert recycling.STOP_SIGNALS <= signal.pthread_sigmask(signal.SIG_BLOCK, ()), (
        "SIGTERM/SIGINT stay pending across the exec"
    )


@pytest.mark.usefixtures("signal_state")
def test_a_sigterm_pending_across_the_exec_is_noted_for_a_graceful_stop() -> None:
    recycling.hold_stop_signals()
    assert not recycling.stop_signalled(), "a process not started by respawn is left alone"
    assert signal.getsignal(signal.SIGTERM) is not recycling._StopSignals.note

    signal.pthread_sigmask(signal.SIG_BLOCK, recycling.STOP_SIGNALS)  # as respawn leaves them
    # while the fresh process starts (its one thread: here, the main thread of this one)
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
    recycling.hold_stop_signals()

    assert recycling.stop_signalled(), "noted, not killed: the loop stops gracefully"
    assert not recycling.STOP_SIGNALS & signal.pthread_sigmask(signal.SIG_BLOCK, ())


@pytest.mark.usefixtures("signal_state")
def test_a_process_that_cannot_exec_itself_exits_1_for_a_supervisor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits = []

    def missing(path: str, argv: list[str], env: dict[str, str]) -> None:
        raise FileNotFoundError(2, "No such file or directory", path)

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(recycling.os, "execve", missing)
    monkeypatch.setattr(recycling.os, "_exit", fake_exit)
    monkeypatch.setattr(recycling.logging, "shutdown", lambda: None)
    with pytest.raises(SystemExit):
        recycling.respawn({})

    assert exits == [1]


@pytest.mark.usefixtures("signal_state")
def test_a_sigterm_between_the_drain_and_the_exec_cancels_the_exec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recycling.os, "execve", lambda *args: pytest.fail("exec'd after SIGTERM"))
    recycling.note_stop_signals()  # as the worker loop leaves them when it recycles
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)

    recycling.respawn({})  # returns: the caller exits 0

    assert recycling.stop_signalled()
