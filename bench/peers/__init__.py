"""The other queues the throughput benchmark measures ours against: PgQueuer and Celery + Redis."""
