"""Deleting an app and everything it accumulated, in bounded, resumable batches.

``steps`` says what goes and in which order (children before parents), ``batches`` deletes at
most 1,000 rows a statement in short transactions and records the job's progress with each,
``service`` holds the app-side deletion (the row and the deferred job in one transaction) and
the job's work.
"""

from __future__ import annotations
