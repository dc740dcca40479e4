"""Composition root: builds the process's resources from :class:`~worker.config.Settings`.

Nothing here runs at import. ``manage.py`` commands enter :func:`database_url` to get the URL of
the database in use: ``DATABASE_URL`` when set, else the embedded server, started on entry and
stopped on exit when this process was its last user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from worker import db
from worker.config import Settings
from worker.embedded import EmbeddedPostgres


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield the libpq URL of the database to use, starting the embedded server if needed."""
    if settings.database_url is not None:
        yield db.libpq_url(settings.database_url)
        return
    with EmbeddedPostgres(settings.data_dir).attached() as url:
        yield url
