"""The rows of a segment CSV import, checked before anything is written.

Dify 1.7.0's HTTP side parses the CSV and passes the rows (``[{"content": ...}]``, with
``"answer"`` for QA documents); 1.14 passes the id of the uploaded CSV and the task reads it:
first column the content, second the answer, header row skipped. Both shapes are accepted.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import chunking, sources
from worker.domain.errors import PermanentError
from worker.domain.models import IndexStructureType, UploadFile
from worker.domain.ports import Storage

#: Namespace of the uuid5 ids of imported segments: ``uuid5(ns, "<job id>:<row index>")``.
IMPORT_NAMESPACE = uuid.UUID("a3f5d0c2-71e4-4b8e-9c61-5d2e8f0b4a17")


class InvalidImportRow(PermanentError):
    """A row of the segment import has no content (or, for QA documents, no answer)."""


@dataclass(frozen=True, kw_only=True)
class ImportRow:
    """One segment to import, with ids derived from (job id, row)."""

    index: int
    segment_id: uuid.UUID
    node_id: str
    content: str
    answer: str | None

    @property
    def word_count(self) -> int:
        return chunking.word_count(self.content) + chunking.word_count(self.answer or "")


def read_rows(
    session: orm.Session, storage: Storage, content: object
) -> list[dict[str, object]] | object:
    """The rows as Dify 1.7.0 passes them: ``content`` itself, or those of the uploaded CSV
    whose id it is (read in ``session``)."""
    if not isinstance(content, str):
        return content
    file_id = sources.as_uuid(content, what="upload_file_id")
    key = session.scalar(sa.select(UploadFile.key).where(UploadFile.id == file_id))
    if key is None:
        raise PermanentError(f"upload file {content} not found")
    try:
        text = storage.load(key).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidImportRow(f"the CSV file {content} is not UTF-8: {exc}") from None
    lines = list(csv.reader(io.StringIO(text)))[1:]  # the header row
    return [
        {"content": line[0], **({"answer": line[1]} if len(line) > 1 else {})}
        for line in lines
        if any(cell.strip() for cell in line)
    ]


def validate(job_id: str, rows: object, doc_form: IndexStructureType) -> list[ImportRow]:
    """The rows to import, with their ids.

    Raises
    ------
    InvalidImportRow
        Naming the first bad row (counted from 1): not an object, no ``content`` text, or (QA
        documents) no ``answer`` text; or no row at all.
    """
    if not isinstance(rows, list) or not rows:
        raise InvalidImportRow("the import has no rows")
    qa = doc_form is IndexStructureType.QA_INDEX
    checked = []
    for index, row in enumerate(rows):
        where = f"row {index + 1}"
        if not isinstance(row, dict):
            raise InvalidImportRow(f"{where} is not an object with a content")
        content, answer = row.get("content"), row.get("answer")
        if not isinstance(content, str) or not content.strip():
            raise InvalidImportRow(f"{where}: 'content' is missing or empty")
        if qa and (not isinstance(answer, str) or not answer.strip()):
            raise InvalidImportRow(f"{where}: 'answer' is missing or empty (QA document)")
        segment_id = uuid.uuid5(IMPORT_NAMESPACE, f"{job_id}:{index}")
        checked.append(
            ImportRow(
                index=index,
                segment_id=segment_id,
                node_id=str(uuid.uuid5(IMPORT_NAMESPACE, f"{segment_id}:node")),
                content=content.strip(),
                answer=answer.strip() if qa and isinstance(answer, str) else None,
            )
        )
    return checked
