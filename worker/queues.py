"""Queue names (Dify's) and their default concurrency: the one place they are spelled."""

from __future__ import annotations

DATASET = "dataset"
PRIORITY_DATASET = "priority_dataset"
MAIL = "mail"
ANNOTATION = "annotation"
DEFAULT = "default"
OPS_TRACE = "ops_trace"
APP_DELETION = "app_deletion"
PLUGIN = "plugin"

#: Default concurrency per queue: the seed's QUEUE_CONFIG plus Dify's other queues of our tasks.
DEFAULT_CONCURRENCY: dict[str, int] = {
    DATASET: 4,
    PRIORITY_DATASET: 2,
    MAIL: 2,
    ANNOTATION: 2,
    DEFAULT: 2,
    OPS_TRACE: 2,
    APP_DELETION: 1,
    PLUGIN: 2,
}

#: Every queue a worker serves when no ``--queues`` is given.
ALL_QUEUES: tuple[str, ...] = tuple(DEFAULT_CONCURRENCY)
