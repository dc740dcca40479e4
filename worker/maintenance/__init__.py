"""Periodic work inside the worker process, one service per module (River's ``maintenance/``).

- ``schedule``: the schedule table (every periodic job, its trigger, policy and switch);
- ``ticks``: scheduled times every process computes alike, and what a firing must do;
- ``leader``: the leadership, an advisory lock on a connection of its own;
- ``firing``: one firing, its tick recorded and its job deferred in one transaction;
- ``scheduler``: APScheduler timers and the election, started by ``worker.server``;
- ``status``: what ``manage.py schedule`` shows;
- ``retention``: deleting finished jobs, outcomes, deliveries and ticks in bounded batches.
"""
