"""Indexing throughput end to end, against COPY of the same vectors (the floor on this machine).

    python bench/indexing.py [--segments 5000] [--dimension 256]

1. Uploads one generated text document that splits into ``--segments`` segments, defers
   ``document_indexing_task`` and lets ``manage.py worker --queues dataset`` (one process, the
   local embedder) index it: read, clean, split, insert segments, embed, load into pgvector with
   the HNSW index, one batch per transaction. Segments/s = segments / (completed_at -
   processing_started_at) of the document; the worker's peak RSS is read from /proc (VmHWM).
2. Reads the very vectors the worker wrote and COPYs them, in one transaction, into a fresh table
   with the same HNSW cosine index: rows/s of that is the floor.
3. Prints both and the ratio (pipeline / COPY). Absolute numbers move on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.throughput import database  # noqa: E402
from tests import factories  # noqa: E402
from worker import db, runtime, schema  # noqa: E402
from worker.config import Settings  # noqa: E402
from worker.domain.models import Document, ProcessRuleMode  # noqa: E402
from worker.tasks import document_indexing_task  # noqa: E402


def corpus(segments: int) -> str:
    words = (
        "river copper lantern harvest signal meadow engine glacier orchard compass quarry "
        "thunder saddle violin harbour ember"
    ).split()
    return "\n\n".join(
        f"Paragraph {i}: " + " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(20))
        for i in range(segments)
    )


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_pipeline(url: str, storage: Path, segments: int, dimension: int) -> tuple[float, float]:
    settings = Settings(storage_local_path=storage, embedding_dimension=dimension)
    runtime.setup(url, settings=settings)
    with db.session_scope() as session:
        dataset = factories.make_dataset(
            session, factories.make_tenant(session), embedding_model=f"hashing-{dimension}"
        )
        rule = factories.make_rule(
            session, dataset, ProcessRuleMode.CUSTOM,
            {"pre_processing_rules": [],
             "segmentation": {"separator": "\\n\\n", "max_tokens": 200, "chunk_overlap": 0}},
        )  # fmt: skip
        doc = factories.make_upload_document(
            session, dataset, storage, "corpus.txt", corpus(segments).encode(),
            dataset_process_rule_id=rule.id,
        )  # fmt: skip
        result = document_indexing_task.delay(str(dataset.id), [str(doc.id)])
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "STORAGE_LOCAL_PATH": str(storage),
        "WORKER_EMBEDDING_DIMENSION": str(dimension),
        "LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryFile("w+") as log:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--queues", "dataset"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            result.get(timeout=1800)
            peak = peak_rss_mb(worker.pid)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
    with db.session_scope() as session:
        started, completed, count = session.execute(
            sa.select(
                Document.processing_started_at,
                Document.completed_at,
                sa.select(sa.func.count())
                .select_from(sa.table("document_segments"))
                .scalar_subquery(),
            )
        ).one()
    runtime.teardown()
    seconds = (completed - started).total_seconds()
    print(f"pipeline: {count} segments in {seconds:.1f} s, worker peak RSS {peak:.0f} MB")
    return count / seconds, peak


def run_copy(url: str, dimension: int) -> float:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT node_id, content, embedding::text FROM embedding_vectors ORDER BY id"
        ).fetchall()
        conn.execute(
            "CREATE TABLE bench_copy (node_id text PRIMARY KEY, content text, "
            f"embedding vector({dimension}))"
        )
        conn.execute("CREATE INDEX ON bench_copy USING hnsw (embedding vector_cosine_ops)")
        conn.commit()
        clock = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy("COPY bench_copy (node_id, content, embedding) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - clock
    print(f"COPY:     {len(rows)} vectors in {seconds:.1f} s (same HNSW index)")
    return len(rows) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=5000)
    parser.add_argument("--dimension", type=int, default=256)
    args = parser.parse_args()
    with database() as url, tempfile.TemporaryDirectory(prefix="bench-storage-") as storage:
        engine = schema.engine_for(url)
        schema.upgrade(engine)
        engine.dispose()
        pipeline_rate, peak = run_pipeline(url, Path(storage), args.segments, args.dimension)
        copy_rate = run_copy(url, args.dimension)
    print()
    print(f"  pipeline {pipeline_rate:8.0f} segments/s   (worker peak RSS {peak:.0f} MB)")
    print(f"  COPY     {copy_rate:8.0f} vectors/s")
    print(f"  ratio pipeline / COPY: {pipeline_rate / copy_rate:.2f}x")


if __name__ == "__main__":
    main()
