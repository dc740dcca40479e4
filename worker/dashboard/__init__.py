"""The web dashboard and ``/metrics`` (issue 16): server-rendered pages over the database.

``manage.py dashboard`` serves it alone; ``manage.py worker --http PORT`` serves the same pages
from a worker process, in a thread. Every figure is read from PostgreSQL, so any process shows
the same. Actions (retry, cancel, recover, pause, resume) need ``WORKER_DASHBOARD_TOKEN``.
"""
