"""Ops-trace jobs per second against a fake Langfuse on 127.0.0.1, beside the no-op throughput.

    python bench/ops_trace.py [--jobs 5000] [--concurrency 10] [--rounds 1]

On one PostgreSQL server (the embedded PostgreSQL 18 in a temporary directory, or
``DATABASE_URL``), each round drains, with one ``manage.py worker`` process each and the same
concurrency (methods and functions of ``bench/throughput.py``):

- ``--jobs`` prefilled no-op jobs (``bench.noop`` on ``default``);
- a burst of ``--jobs`` trace payloads (``MessageTraceInfo``) written to local storage, their
  ``process_trace_tasks`` jobs deferred, drained on ``ops_trace`` against a fake Langfuse
  ingestion endpoint (a threaded HTTP/1.1 server in this process, answering 207 with every event
  accepted). Each job reads its payload and the app's rows, records the attempt, sends two
  events, records ``sent`` with its outcome and deletes the payload after the commit; the run
  checks that every delivery is ``sent`` and no payload is left.

Figures are jobs/s per round (finished jobs between the first poll that sees one and the poll
that sees them all, over that time) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import harness, systems, throughput  # noqa: E402
from worker import db, queues  # noqa: E402

TRACE = "trace"
MESSAGE = {
    "message_id": None, "inputs": {"query": "hello"}, "outputs": "hi there",
    "start_time": "2026-12-01T10:00:00", "end_time": "2026-12-01T10:00:02",
    "message_tokens": 5, "answer_tokens": 3, "total_tokens": 8,
    "message_data": {"model_id": "gpt-4o-mini"},
}  # fmt: skip


class _Ingestion(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Langfuse's load balancer
    # one write per reply, no Nagle: headers and body in separate segments would wait for a
    # delayed ACK (40 ms) and measure the fake instead of the worker
    wbufsize = 65536
    disable_nagle_algorithm = True
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            type(self).received += 1
        reply = json.dumps({"successes": [{"id": e["id"], "status": 201} for e in body["batch"]],
                            "errors": []}).encode()  # fmt: skip
        self.send_response(207)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def fake_langfuse() -> Iterator[str]:
    """A fake ingestion endpoint on 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingestion)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-langfuse", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class OpsTrace(systems.Ours):
    """``manage.py worker`` on ``ops_trace``, delivering payloads to the fake Langfuse."""

    label = "`manage.py worker`, ops traces"
    kinds: ClassVar[tuple[str, ...]] = (TRACE,)
    queue = queues.OPS_TRACE

    def __init__(self, url: str, host: str, storage: Path) -> None:
        super().__init__(url)
        self.host = host
        self.storage = storage

    def reset(self) -> None:
        super().reset()
        self.db.execute("TRUNCATE trace_deliveries")

    def prefill(self, kind: str, n: int) -> None:
        from worker.domain.ops_trace import payload
        from worker.domain.storage import LocalStorage
        from worker.jobs import group
        from worker.tasks import process_trace_tasks

        systems.bind_runtime(self.db.url)
        app_id = self._app()
        storage = LocalStorage(self.storage)
        for size in systems.chunks(n):
            with db.session_scope() as session:
                files = [
                    payload.write(
                        session, storage, app_id=app_id, trace_info_type="MessageTraceInfo",
                        trace_info={**MESSAGE, "message_id": str(uuid.uuid4())},
                    )
                    for _ in range(size)
                ]  # fmt: skip
                group(
                    process_trace_tasks.s({"file_id": f.file_id, "app_id": str(app_id)})
                    for f in files
                ).apply_async()

    def _app(self) -> uuid.UUID:
        from worker.domain.models import App, Tenant, TraceAppConfig

        with db.session_scope() as session:
            tenant = Tenant(name="bench")
            session.add(tenant)
            session.flush()
            app = App(tenant_id=tenant.id, name="bench", mode="chat",
                      tracing={"enabled": True, "tracing_provider": "langfuse"})  # fmt: skip
            session.add(app)
            session.flush()
            config = {"public_key": "pk-bench", "secret_key": "sk-bench", "host": self.host}
            session.add(
                TraceAppConfig(app_id=app.id, tracing_provider="langfuse", tracing_config=config)
            )
            return app.id

    def command(self, concurrency: int) -> tuple[list[str], dict[str, str]]:
        return (
            [sys.executable, "manage.py", "worker", "--queues", self.queue,
             "--concurrency", f"{self.queue}={concurrency}"],
            {"DATABASE_URL": self.db.url, "WORKER_SCHEDULER": "false",
             "STORAGE_LOCAL_PATH": str(self.storage)},
        )  # fmt: skip

    def verify(self, kind: str, n: int) -> None:
        super().verify(throughput.NO_OP, n)
        sent = self.db.scalar("SELECT count(*) FROM trace_deliveries WHERE status = 'sent'")
        left = sum(1 for _ in (self.storage / "ops_trace").rglob("*.json"))
        if sent != n or left:
            raise SystemExit(f"ops traces: {sent} of {n} delivered, {left} payload(s) left")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per run (default 5000)")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rates: dict[str, list[float]] = {"no-op": [], "ops trace": []}
    with (
        harness.terminated_on_signals(),
        harness.database() as url,
        fake_langfuse() as host,
        tempfile.TemporaryDirectory(prefix="bench-storage-") as storage,
    ):
        processes = harness.Processes()
        try:
            throughput.prepare(url)
            runs = {
                "no-op": throughput.Run("ours no-op", systems.Ours(url), throughput.NO_OP),
                "ops trace": throughput.Run("ops trace", OpsTrace(url, host, Path(storage)), TRACE),
            }
            print(
                f"{args.jobs} jobs per run, concurrency {args.concurrency}, "
                f"{args.rounds} round(s), tree {throughput.tree_state()}",
                flush=True,
            )
            for round_no in range(args.rounds):
                for name, run in runs.items():
                    rate, _ = throughput.drain(run, processes, args.jobs, args.concurrency, 0)
                    rates[name].append(rate)
                    print(f"round {round_no + 1}: {name}: {rate:.0f} jobs/s", flush=True)
        finally:
            systems.unbind_runtime()
            processes.close()
    noop, trace = statistics.median(rates["no-op"]), statistics.median(rates["ops trace"])
    print(f"\n| run | jobs/s (median) |\n| --- | --- |\n| no-op | {noop:.0f} |\n"
          f"| ops trace (fake Langfuse, 127.0.0.1) | {trace:.0f} |\n"
          f"ops trace / no-op: {trace / noop:.2f}; requests received by the fake: "
          f"{_Ingestion.received}")  # fmt: skip


if __name__ == "__main__":
    main()
