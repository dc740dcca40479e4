-- annotation_vectors_delete_app --
-- One app's vectors in every annotation collection but :keep (NULL: in all of them): after its
-- annotations moved to another embedding model, or on disable. The collections are shared by
-- every app of that model: other apps' vectors stay. The key is a literal so that the condition
-- matches ix_embedding_vectors_collection_app_id.
DELETE FROM embedding_vectors
 WHERE collection IN (SELECT collection_name
                        FROM dataset_collection_bindings
                       WHERE type = 'annotation'
                         AND collection_name IS DISTINCT FROM CAST(:keep AS varchar))
   AND metadata ->> 'app_id' = :app_id

-- annotation_vectors_delete_stale --
-- One app's vectors in :collection whose node is none of :node_ids (its current annotations).
DELETE FROM embedding_vectors
 WHERE collection = :collection
   AND metadata ->> 'app_id' = :app_id
   AND node_id <> ALL(CAST(:node_ids AS varchar[]))

-- annotation_vectors_delete_node --
-- One annotation's vector in every annotation collection: the app may have moved to another
-- embedding model since the delete was deferred.
DELETE FROM embedding_vectors
 WHERE collection IN (SELECT collection_name
                        FROM dataset_collection_bindings
                       WHERE type = 'annotation')
   AND node_id = :node_id
