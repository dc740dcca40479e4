"""Domain layer: models, unit of work and the services the tasks call."""

from __future__ import annotations
