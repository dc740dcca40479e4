"""Editing a completed document's chunks: Dify's segment tasks.

- :mod:`~worker.domain.segment_ops.toggle`: enable or disable one segment or many (their
  vectors and keyword rows follow the segment's ``enabled`` value *when the job runs*);
- :mod:`~worker.domain.segment_ops.removal`: drop the index entries of deleted segments (and of
  their child chunks, found by ``parent_id`` when their rows are gone);
- :mod:`~worker.domain.segment_ops.imports`: the CSV import of segments, never twice;
- :mod:`~worker.domain.segment_ops.busy`: whether a segment has a waiting or running job (in
  place of Dify's ``segment_{id}_indexing`` Redis flag).
"""

from __future__ import annotations
