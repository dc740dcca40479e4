"""The payload sweep: no trace payload outlives its outcome, none goes before it.

A payload is normally deleted by its own job right after the outcome commits; a crash in
between leaves it. The sweep (a periodic job) walks ``ops_trace/`` in storage and deletes, in
batches, the payloads whose delivery is final (``sent``, ``failed``, ``skipped``), and those
that have no delivery, no waiting or running job and are older than ``orphan_after`` (written
in a transaction that never committed). Then it deletes final deliveries older than
``retain``, in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from worker.domain.models import FINAL_TRACE_STATUSES, TraceDelivery
from worker.domain.ops_trace.payload import PREFIX
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Payloads looked up (and rows deleted) per transaction.
BATCH_SIZE = 1000
#: A payload with neither delivery nor job is deleted once this old.
ORPHAN_AFTER = timedelta(days=1)
#: Final deliveries are kept this long.
RETAIN_DELIVERIES = timedelta(days=7)

_WAITING_JOBS = sa.text(
    "SELECT args->'file_info'->>'file_id' FROM procrastinate_jobs"
    " WHERE task_name = :task AND status IN ('todo', 'doing')"
    " AND args->'file_info'->>'file_id' = ANY(:ids)"
)
_DELETE_DELIVERIES = sa.text(
    "DELETE FROM trace_deliveries WHERE file_id IN ("
    " SELECT file_id FROM trace_deliveries"
    " WHERE created_at < :before AND status = ANY(:final) LIMIT :limit)"
    " RETURNING file_id"
)


@dataclass(frozen=True, kw_only=True)
class SweepPolicy:
    """What the sweep deletes."""

    #: Registered name of the task whose jobs deliver payloads.
    task_name: str
    orphan_after: timedelta = ORPHAN_AFTER
    retain: timedelta = RETAIN_DELIVERIES
    batch_size: int = BATCH_SIZE


def sweep(
    uow: UnitOfWork, root: Path, policy: SweepPolicy, *, now: datetime | None = None
) -> dict[str, int]:
    """Delete payloads and deliveries the policy no longer keeps (see the module docstring);
    ``root`` is the storage root. Returns counts by kind."""
    now = now or datetime.now(UTC)
    counts = {"final": 0, "orphaned": 0, "deliveries": 0}
    for batch in _batches(_payloads(root / PREFIX), policy.batch_size):
        final, orphans = _classify(uow, batch, policy, now)
        for path in final:
            path.unlink(missing_ok=True)
        for path in orphans:
            path.unlink(missing_ok=True)
        counts["final"] += len(final)
        counts["orphaned"] += len(orphans)
    _remove_empty_folders(root / PREFIX)
    final_values = [status.value for status in FINAL_TRACE_STATUSES]
    while True:
        with uow.step() as session:
            deleted = len(
                session.execute(
                    _DELETE_DELIVERIES,
                    {"before": now - policy.retain, "final": final_values,
                     "limit": policy.batch_size},
                ).all()
            )  # fmt: skip
        counts["deliveries"] += deleted
        if deleted < policy.batch_size:
            break
    logger.info(
        "trace payload sweep: %d delivered, %d orphaned payload(s) deleted; %d old deliveries",
        counts["final"], counts["orphaned"], counts["deliveries"],
        extra={"action": "trace_payload_sweep", **counts},
    )  # fmt: skip
    return counts


def _classify(
    uow: UnitOfWork, batch: list[Path], policy: SweepPolicy, now: datetime
) -> tuple[list[Path], list[Path]]:
    ids = [path.stem for path in batch]
    with uow.step() as session:
        rows = session.execute(
            sa.select(TraceDelivery.file_id, TraceDelivery.status).where(
                TraceDelivery.file_id.in_(ids)
            )
        )
        statuses = {row.file_id: row.status for row in rows}
        old = [
            path for path in batch
            if path.stem not in statuses and _age(path, now) > policy.orphan_after
        ]  # fmt: skip
        waiting = set(
            session.execute(
                _WAITING_JOBS, {"task": policy.task_name, "ids": [p.stem for p in old]}
            ).scalars()
        ) if old else set()  # fmt: skip
    final = [path for path in batch if statuses.get(path.stem) in FINAL_TRACE_STATUSES]
    return final, [path for path in old if path.stem not in waiting]


def _payloads(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for app_folder in folder.iterdir():
        if app_folder.is_dir():
            yield from (p for p in app_folder.iterdir() if p.suffix == ".json" and p.is_file())


def _batches(paths: Iterator[Path], size: int) -> Iterator[list[Path]]:
    batch: list[Path] = []
    for path in paths:
        batch.append(path)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _age(path: Path, now: datetime) -> timedelta:
    try:
        return now - datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return timedelta(0)


def _remove_empty_folders(folder: Path) -> None:
    if not folder.is_dir():
        return
    for app_folder in folder.iterdir():
        if app_folder.is_dir() and not any(app_folder.iterdir()):
            try:
                app_folder.rmdir()
            except OSError:  # a payload written meanwhile
                continue
