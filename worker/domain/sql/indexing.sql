-- stuck_documents --
-- Documents left in progress (not paused) for :older_than seconds that no waiting or running
-- job mentions: their indexing job was lost, or stopped without recording an outcome.
SELECT d.id, d.dataset_id, d.indexing_status
  FROM documents AS d
 WHERE d.indexing_status IN ('waiting', 'parsing', 'cleaning', 'splitting', 'indexing')
   AND d.is_paused IS NOT TRUE
   AND d.updated_at < now() - make_interval(secs => :older_than)
   AND NOT EXISTS (
       SELECT 1
         FROM procrastinate_jobs AS j
        WHERE j.status IN ('todo', 'doing')
          AND (j.args ->> 'document_id' = d.id::text
               OR j.args ->> 'dataset_document_id' = d.id::text
               OR j.args -> 'document_ids' ? d.id::text)
   )
 ORDER BY d.updated_at
 LIMIT :limit
