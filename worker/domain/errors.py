"""Typed errors. Each family tells the worker what to do: retry later, or fail now."""

from __future__ import annotations


class DomainError(Exception):
    """A task could not do its work."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())


class TransientError(DomainError):
    """A dependency failed in a way that may pass (timeout, refused connection, 4xx reply)."""


class PermanentError(DomainError):
    """The work cannot succeed as asked (bad input, missing row, rejected address)."""
