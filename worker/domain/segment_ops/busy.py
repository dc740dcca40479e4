"""Whether a segment is "busy": it has a waiting or running job.

Replaces Dify's ``segment_{id}_indexing`` Redis flag (set for 10 minutes by the console, and
left set when a task returned early). The single-segment tasks hold the lock (and queueing
lock) ``segment:<id>``; the batch toggles hold their document's lock and list the segment in
``segment_ids``. A job that ended, however it ended, no longer makes its segments busy.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy import orm

#: Lock and queueing lock of the single-segment tasks.
SEGMENT_LOCK = "segment:{segment_id}"
#: Names of the batch toggles (their jobs list the segments in ``segment_ids``).
BATCH_TASKS = ("segments.enable_segments_to_index", "segments.disable_segments_from_index")

_BUSY = sa.text(
    """
    SELECT EXISTS (
      SELECT 1 FROM procrastinate_jobs
       WHERE status IN ('todo', 'doing')
         AND (lock = :lock OR queueing_lock = :lock
              OR (task_name = ANY(:batch) AND args -> 'segment_ids' ? :segment_id)))
    """
)


def is_busy(session: orm.Session, segment_id: str | uuid.UUID) -> bool:
    """Whether a job changing the segment's index waits or runs (Dify's "segment is being
    indexed": refuse the edit)."""
    ident = str(uuid.UUID(str(segment_id)))
    return bool(
        session.execute(
            _BUSY,
            {
                "lock": SEGMENT_LOCK.format(segment_id=ident),
                "batch": list(BATCH_TASKS),
                "segment_id": ident,
            },
        ).scalar_one()
    )
