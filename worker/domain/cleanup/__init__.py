"""Deleting documents and datasets: the app-side services and the cleanup jobs.

The schema cascades rows (a dataset's documents, segments, child chunks, rules, metadata...;
a document's segments, child chunks, bindings), but not vectors (``embedding_vectors`` is keyed
by collection), document keyword rows, upload files or their blobs. So
:mod:`~worker.domain.cleanup.deletion` runs in the app's transaction: it collects what the
cascade will hide (source upload files, images linked from segments), deletes the rows and
defers the cleanup with those ids, all or nothing. :mod:`~worker.domain.cleanup.purge` is what
the jobs do: never touch a live row, delete vectors and keyword rows in bounded batches, blobs
before their rows.
"""

from __future__ import annotations
