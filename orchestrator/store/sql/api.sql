-- REST API queries (orchestrator/api/rest.py). Loaded with queries.sql.
-- Read access: $app reads a conversation of the accounts $accounts when $all (can_read =
-- "all", or standby copies of everything), when it owns it, when it is the primary app and
-- the thread is idle (the primary speaks then), or when it owned it or was its human app
-- (conversation_readers, migration 0003).

-- name: api_list_conversations
SELECT c.id, c.account_id, c.customer_id, c.state, c.owner_app, c.updated_at
FROM conversations c
WHERE c.account_id = ANY ($4::text[])
  AND ($1::text IS NULL OR c.state = $1)
  AND ($2::text IS NULL OR c.account_id = $2)
  AND ($6::boolean OR c.owner_app = $5 OR ($7::boolean AND c.owner_app IS NULL)
       OR EXISTS (SELECT 1 FROM conversation_readers r
                  WHERE r.conversation_id = c.id AND r.app = $5))
ORDER BY c.updated_at DESC, c.id DESC
LIMIT $3;

-- name: api_conversation
SELECT c.id, c.account_id, c.customer_id, c.state, c.owner_app, c.view,
       (c.account_id = ANY ($2::text[])
        AND ($4::boolean OR c.owner_app = $3 OR ($5::boolean AND c.owner_app IS NULL)
             OR EXISTS (SELECT 1 FROM conversation_readers r
                        WHERE r.conversation_id = c.id AND r.app = $3))) AS readable
FROM conversations c WHERE c.id = $1;

-- name: api_action_by_key
SELECT id, payload ->> 'request_hash' AS request_hash FROM events
WHERE account_id = $1 AND dedup_key = $2;
