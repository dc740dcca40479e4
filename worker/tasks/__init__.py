"""Task entry points, one module per Dify area; thin wrappers over ``worker.domain``."""
