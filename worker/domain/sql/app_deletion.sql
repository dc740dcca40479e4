-- app_deletion_annotation_vectors --
-- At most :batch of one app's vectors in the annotation collections, which every app of an
-- embedding model shares: other apps' vectors stay. The key is a literal so that the condition
-- matches ix_embedding_vectors_collection_app_id.
DELETE FROM embedding_vectors
 WHERE id IN (SELECT id
                FROM embedding_vectors
               WHERE collection IN (SELECT collection_name
                                      FROM dataset_collection_bindings
                                     WHERE type = 'annotation')
                 AND metadata ->> 'app_id' = :app_id
               LIMIT :batch)

-- job_progress_record --
-- How far job :job_id got, written with the step it describes.
INSERT INTO job_progress AS p (job_id, progress, updated_at)
VALUES (:job_id, CAST(:progress AS jsonb), now())
    ON CONFLICT (job_id) DO UPDATE SET progress = excluded.progress, updated_at = now()
