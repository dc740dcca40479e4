-- report_worker_usage --
-- What worker :worker_id is and how much it has done (migration 0014): written when it
-- registers and at every heartbeat, read by ``manage.py queues``.
UPDATE procrastinate_workers
   SET pid = :pid, hostname = :hostname, queues = CAST(:queues AS text[]),
       jobs_run = :jobs_run, rss_bytes = :rss_bytes,
       max_jobs = :max_jobs, max_memory_mb = :max_memory_mb
 WHERE id = :worker_id

-- live_workers --
-- Workers that beat within :stalled_after seconds, with their job count, memory and limits.
SELECT id, pid, hostname, queues, jobs_run, rss_bytes, max_jobs, max_memory_mb,
       extract(epoch FROM now() - last_heartbeat) AS heartbeat_age
  FROM procrastinate_workers
 WHERE last_heartbeat >= now() - make_interval(secs => :stalled_after)
 ORDER BY id
