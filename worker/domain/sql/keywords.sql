-- keyword_upsert --
-- One node of an economy dataset: its keywords, and a full-text vector of its jieba-segmented
-- text (space-joined words) with the keywords weighted A. Replaces the node if indexed already.
INSERT INTO keyword_index (dataset_id, node_id, document_id, keywords, tsv)
VALUES (:dataset_id, :node_id, :document_id, CAST(:keywords AS text[]),
        setweight(to_tsvector('simple', :keyword_text), 'A') || to_tsvector('simple', :segmented))
ON CONFLICT (dataset_id, node_id) DO UPDATE
   SET document_id = EXCLUDED.document_id,
       keywords = EXCLUDED.keywords,
       tsv = EXCLUDED.tsv

-- keyword_search --
-- The dataset's nodes matching the OR query (tsquery text of quoted lexemes), best ts_rank first
-- (normalised by length, 1, and mapped into [0, 1), 32), with their segment's content as in Dify.
SELECT k.node_id,
       CAST(k.document_id AS text) AS document_id,
       ts_rank(k.tsv, to_tsquery('simple', :query), 1 | 32) AS score,
       coalesce(s.content, '') AS content,
       s.index_node_hash AS doc_hash
  FROM keyword_index AS k
  LEFT JOIN document_segments AS s
    ON s.dataset_id = k.dataset_id AND s.index_node_id = k.node_id
 WHERE k.dataset_id = :dataset_id
   AND k.tsv @@ to_tsquery('simple', :query)
 ORDER BY score DESC, k.node_id
 LIMIT :top_k
