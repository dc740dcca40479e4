"""Dify's periodic maintenance: the embedding-cache clean, the unused-datasets clean, the
Monday notice of auto-disabled documents and the queue monitor (one module each), scheduled by
the in-worker scheduler (``worker.maintenance.schedule``)."""

from __future__ import annotations

from worker.domain.housekeeping import embedding_cache, notify, queue_monitor, unused_datasets

__all__ = ["embedding_cache", "notify", "queue_monitor", "unused_datasets"]
