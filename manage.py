#!/usr/bin/env python
"""Command line of the task layer: ``python manage.py --help``."""

from __future__ import annotations

import faulthandler
import signal
import sys

from worker.cli import main

if __name__ == "__main__":
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how to see where a worker hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    sys.exit(main())
