-- vector_upsert --
-- One node of a collection with its embedding (text '[1,2,3]'); replaces the node if present.
INSERT INTO embedding_vectors (collection, node_id, document_id, content, metadata, dimension,
                               embedding)
VALUES (:collection, :node_id, :document_id, :content, CAST(:metadata AS jsonb), :dimension,
        CAST(:embedding AS vector))
ON CONFLICT (collection, node_id) DO UPDATE
   SET document_id = EXCLUDED.document_id,
       content = EXCLUDED.content,
       metadata = EXCLUDED.metadata,
       dimension = EXCLUDED.dimension,
       embedding = EXCLUDED.embedding

-- vector_index_exists --
-- Whether a relation (the HNSW index of a dimension) exists in the search path.
SELECT to_regclass(:name) IS NOT NULL

-- vector_index_lock --
-- Serialises the first writers of one dimension until the one creating its index commits.
SELECT pg_advisory_xact_lock(hashtext('embedding_vectors_hnsw'), :dimension)

-- vector_index_create --
-- The HNSW cosine index of one dimension ({dimension} is replaced by the integer: a type
-- modifier cannot be a parameter). The cast to vector({dimension}) gives pgvector the fixed
-- dimension HNSW needs; the predicate keeps other dimensions out of it.
CREATE INDEX IF NOT EXISTS ix_embedding_vectors_hnsw_{dimension} ON embedding_vectors
 USING hnsw ((CAST(embedding AS vector({dimension}))) vector_cosine_ops)
 WHERE dimension = {dimension}

-- vector_scan_settings --
-- For the rest of the transaction: keep scanning the HNSW index until enough rows pass the
-- collection filter (pgvector >= 0.8), in relaxed order (strict order stops early and returns
-- fewer rows than asked when the graph holds dead or filtered-out tuples; the search re-sorts),
-- with a candidate list as long as the rows asked for (ef_search, 40 to 1000).
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
       set_config('hnsw.ef_search', CAST(:ef_search AS text), true)

-- vector_search --
-- The collection's nodes nearest to :embedding by cosine distance, through the HNSW index of
-- the dimension ({dimension} is replaced by the integer so that the expression and the predicate
-- match that index), re-sorted exactly (a relaxed scan may return them slightly out of order;
-- "+ 0" keeps the planner from reusing the index order).
WITH nearest AS MATERIALIZED (
    SELECT node_id,
           content,
           CAST(document_id AS text) AS document_id,
           metadata,
           CAST(embedding AS vector({dimension})) <=> CAST(:embedding AS vector({dimension}))
               AS distance
      FROM embedding_vectors
     WHERE dimension = {dimension}
       AND collection = :collection
       AND (CAST(:document_ids AS uuid[]) IS NULL
            OR document_id = ANY(CAST(:document_ids AS uuid[])))
     ORDER BY distance
     LIMIT :top_k
)
SELECT * FROM nearest ORDER BY distance + 0, node_id

-- vector_search_exact --
-- The same nodes, found without the index: every node of the collection (read through its
-- btree) compared to :embedding. Used when the index scan returned fewer than :top_k rows.
SELECT *
  FROM (SELECT node_id,
               content,
               CAST(document_id AS text) AS document_id,
               metadata,
               CAST(embedding AS vector({dimension})) <=> CAST(:embedding AS vector({dimension}))
                   AS distance
          FROM embedding_vectors
         WHERE dimension = {dimension}
           AND collection = :collection
           AND (CAST(:document_ids AS uuid[]) IS NULL
                OR document_id = ANY(CAST(:document_ids AS uuid[])))) AS candidates
 ORDER BY distance + 0, node_id
 LIMIT :top_k
