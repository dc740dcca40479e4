"""Uploaded files on the local disk: the ``Storage`` port for one folder (Dify's ``local`` storage).

Keys are relative, ``/``-separated paths such as ``upload_files/<tenant>/<uuid>.pdf``. A key that
would leave the root folder is refused, and every write goes to a temporary file in the target's
folder first, then replaces the target in one rename, so readers never see half a file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from worker.domain.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)


class LocalStorage:
    """Files under ``root``, addressed by relative keys.

    Parameters
    ----------
    root:
        The folder that holds every file; created on the first write if missing.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def load(self, key: str) -> bytes:
        """The bytes of ``key``.

        Raises
        ------
        PermanentError
            The key escapes the root, the file does not exist, or it cannot be read.
        """
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise PermanentError(f"file {key} not found in storage") from exc
        except OSError as exc:
            raise PermanentError(f"cannot read {key} from storage: {exc}") from exc

    def save(self, key: str, data: bytes) -> None:
        """Write (or overwrite) ``key`` atomically, creating its folders.

        Raises
        ------
        PermanentError
            The key escapes the root.
        TransientError
            The disk refused the write (full, read-only, permissions); a retry may succeed.
        """
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, data)
        except OSError as exc:
            raise TransientError(f"cannot write {key} to storage: {exc}") from exc
        logger.debug(
            "stored %s (%d bytes)",
            key,
            len(data),
            extra={"action": "storage_saved", "storage_key": key},
        )

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing file is not an error.

        Raises
        ------
        PermanentError
            The key escapes the root.
        TransientError
            The disk refused the removal.
        """
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise TransientError(f"cannot delete {key} from storage: {exc}") from exc

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a file in storage.

        Raises
        ------
        PermanentError
            The key escapes the root.
        """
        return self._path(key).is_file()

    def _path(self, key: str) -> Path:
        """The file behind ``key``, refusing keys that would resolve outside the root."""
        posix = PurePosixPath(key)
        if (
            not key
            or posix.is_absolute()
            or PureWindowsPath(key).is_absolute()
            or PureWindowsPath(key).drive
            or ".." in posix.parts
            or ".." in PureWindowsPath(key).parts
            or "\x00" in key
        ):
            raise PermanentError(f"storage key {key!r} escapes the storage root")
        path = (self.root / posix).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise PermanentError(f"storage key {key!r} escapes the storage root")
        return path


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
