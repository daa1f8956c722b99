-- Named queries: `-- name: <query_name>` starts one. Parameters are always bound.

-- name: intake
-- One round trip for a whole webhook POST (see orchestrator_intake in migrations/0001).
SELECT event_id, event_kind FROM orchestrator_intake($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: notify_events
SELECT pg_notify('orchestrator_events', '');

-- name: claim_conversation
-- The head of the queue: conversations among the 500 oldest pending events, oldest first
-- (bounded work per claim, however deep the backlog). The row lock is held for the whole
-- processing transaction, so one conversation is never handled by two workers at once (any
-- process, any machine); a crashed worker's lock dies with its session. NO KEY UPDATE, not
-- UPDATE: it excludes other workers but not the KEY SHARE locks that foreign keys take, so
-- intake and the outbox can insert rows referencing a conversation while it is processed
-- (FOR UPDATE made them wait, and deadlock on the transcript's unique index).
WITH oldest AS (
    SELECT conversation_id, id FROM events
    WHERE status = 'pending' AND conversation_id IS NOT NULL
    ORDER BY id
    LIMIT 500
), candidates AS (
    SELECT conversation_id, min(id) AS first_id FROM oldest GROUP BY conversation_id
)
SELECT c.id, c.account_id, c.customer_id, c.state, c.owner_app, c.view
FROM conversations c JOIN candidates ON candidates.conversation_id = c.id
ORDER BY candidates.first_id
FOR NO KEY UPDATE OF c SKIP LOCKED
LIMIT 1;

-- name: head_events
-- Order rule: within a conversation, by the event's own timestamp (Meta may deliver out of
-- order after failures), then by arrival.
-- `unsent`: a message whose unsend was stored before it (Meta may deliver out of order);
-- the worker erases it before anything else happens with it.
SELECT e.id, e.kind, e.source, e.received_by, e.mid, e.occurred_at, e.received_at, e.payload,
       e.erased,
       (e.kind IN ('message', 'message_edit') AND NOT e.erased AND e.mid IS NOT NULL
        AND EXISTS (SELECT 1 FROM events d WHERE d.account_id = e.account_id
                    AND d.mid = e.mid AND d.kind = 'message_deleted')) AS unsent
FROM events e
WHERE e.conversation_id = $1 AND e.status = 'pending'
ORDER BY e.occurred_at, e.id
LIMIT $2;

-- name: finish_event
UPDATE events SET status = $2, processed_at = clock_timestamp(), result = $3, error = $4
WHERE id = $1;

-- name: orphan_events
-- Events that concern no conversation (app_roles, mentions): recorded, then marked done.
UPDATE events SET status = 'done', processed_at = now(),
                  result = jsonb_build_object('note', 'no conversation: recorded only')
WHERE id IN (SELECT id FROM events WHERE status = 'pending' AND conversation_id IS NULL
             ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
RETURNING id, kind, account_id;

-- name: update_conversation
UPDATE conversations SET state = $2, owner_app = $3, view = $4, updated_at = now() WHERE id = $1;

-- name: insert_message
INSERT INTO messages (conversation_id, mid, direction, author, purpose, text, attachments,
                      created_at, deleted_at, outbox_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (conversation_id, mid) WHERE mid IS NOT NULL DO NOTHING;

-- name: queue_depth
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8 AS oldest_age_s
FROM events WHERE status = 'pending';

-- name: outbox_depth
SELECT count(*) FILTER (WHERE status IN ('pending', 'doing')) AS open,
       count(*) FILTER (WHERE status = 'dead') AS dead
FROM outbox;

-- name: fire_due_timers
-- Due timers become ordinary events of their conversation (occurred_at = due time), so they
-- are processed in order with everything else. Deleting and inserting in one statement makes
-- firing exactly-once even with many workers.
WITH due AS (
    DELETE FROM timers t
    WHERE (t.conversation_id, t.kind) IN (
        SELECT conversation_id, kind FROM timers WHERE due_at <= $1
        ORDER BY due_at LIMIT 200 FOR UPDATE SKIP LOCKED)
    RETURNING t.conversation_id, t.kind, t.due_at, t.generation
)
INSERT INTO events (conversation_id, account_id, dedup_key, kind, source, occurred_at, payload)
SELECT d.conversation_id, c.account_id,
       'timer:' || d.kind || ':' || d.conversation_id || ':' || d.generation || ':'
           || extract(epoch FROM d.due_at)::text,
       'timer', 'timer', d.due_at,
       jsonb_build_object('timer', d.kind, 'generation', d.generation, 'due_at', d.due_at)
FROM due d JOIN conversations c ON c.id = d.conversation_id
ON CONFLICT (account_id, dedup_key) DO NOTHING
RETURNING id;

-- name: insert_outbox
INSERT INTO outbox (conversation_id, event_id, kind, app, payload, available_at)
SELECT $1, $2, k, a, p::jsonb, $6
FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(k, a, p, ord)
ORDER BY ord;

-- name: notify_outbox
SELECT pg_notify('orchestrator_outbox', '');

-- name: claim_outbox
-- The head of each conversation's outbox, in order: a row is claimable only when no older
-- row of its conversation is still open. Retries stay on the same row, so order holds.
UPDATE outbox SET status = 'doing', attempts = attempts + 1, locked_at = now(), locked_by = $2
WHERE id = (
    SELECT o.id FROM outbox o
    WHERE o.status = 'pending' AND o.available_at <= $1
      AND NOT EXISTS (SELECT 1 FROM outbox p
                      WHERE p.conversation_id = o.conversation_id
                        AND p.status IN ('pending', 'doing') AND p.id < o.id)
      AND NOT EXISTS (SELECT 1 FROM outbox d
                      WHERE d.conversation_id = o.conversation_id AND d.status = 'doing')
    ORDER BY o.available_at, o.id
    FOR UPDATE SKIP LOCKED
    LIMIT 1)
RETURNING id, conversation_id, event_id, kind, app, payload, attempts;

-- name: outbox_done
UPDATE outbox SET status = 'done', done_at = now(), result = $2, locked_at = NULL,
                  last_error = NULL
WHERE id = $1;

-- name: outbox_retry
UPDATE outbox SET status = 'pending', available_at = $2, last_error = $3, locked_at = NULL
WHERE id = $1;

-- name: outbox_dead
UPDATE outbox SET status = 'dead', done_at = now(), last_error = $2, locked_at = NULL
WHERE id = $1;

-- name: outbox_reap
-- Rows left 'doing' by a dispatcher that died (every call it makes has a timeout far below
-- this age) go back to 'pending'. This is the one window where a message can be sent twice.
UPDATE outbox SET status = 'pending', locked_at = NULL,
                  last_error = 'recovered from a dispatcher that stopped'
WHERE status = 'doing' AND locked_at < now() - make_interval(secs => $1)
RETURNING id;

-- name: outbox_replay
UPDATE outbox SET status = 'pending', attempts = 0, available_at = now(), last_error = NULL,
                  done_at = NULL
WHERE id = $1 AND status = 'dead'
RETURNING id;

-- name: outbox_dead_list
SELECT id, conversation_id, kind, app, attempts, last_error, created_at, done_at, payload
FROM outbox WHERE status = 'dead' AND ($1::text IS NULL OR app = $1)
ORDER BY id DESC LIMIT $2;

-- name: conversation_context
SELECT c.id, c.account_id, c.customer_id, c.state, c.owner_app, c.view
FROM conversations c WHERE c.id = $1;

-- name: list_conversations
SELECT id, account_id, customer_id, state, owner_app, updated_at
FROM conversations
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR account_id = $2)
ORDER BY updated_at DESC, id DESC
LIMIT $3;

-- name: transcript
SELECT id, mid, direction, author, purpose, text, attachments, created_at, deleted_at
FROM messages WHERE conversation_id = $1 ORDER BY created_at, id;

-- name: event_outcome
SELECT status, result, error FROM events WHERE id = $1;

-- name: event_by_dedup
SELECT id FROM events WHERE account_id = $1 AND dedup_key = $2;

-- name: set_timer
INSERT INTO timers (conversation_id, kind, due_at, generation) VALUES ($1, $2, $3, $4)
ON CONFLICT (conversation_id, kind) DO UPDATE SET due_at = $3, generation = $4;

-- name: cancel_timer
DELETE FROM timers WHERE conversation_id = $1 AND kind = $2;

-- name: comment_info
-- For private replies: when the comment was made, and whether we already answered it.
SELECT (SELECT occurred_at FROM events
        WHERE account_id = $1 AND kind IN ('comment', 'live_comment') AND dedup_key = 'comment:' || $2
        LIMIT 1) AS comment_at,
       EXISTS (SELECT 1 FROM outbox
               WHERE conversation_id = $3 AND kind = 'private_reply'
                 AND payload ->> 'comment_id' = $2 AND status <> 'dead') AS already_replied;

-- name: quiescence
-- Nothing left to do at the clock's `now`: no pending event, no effect claimable or in
-- flight, no timer due. Work scheduled later (backoff, timers, rows queued behind a row that
-- is backing off) waits for the clock.
SELECT (SELECT count(*) FROM events WHERE status = 'pending')
     + (SELECT count(*) FROM outbox o
        WHERE o.status = 'doing'
           OR (o.status = 'pending' AND o.available_at <= $1
               AND NOT EXISTS (SELECT 1 FROM outbox p
                               WHERE p.conversation_id = o.conversation_id
                                 AND p.status IN ('pending', 'doing') AND p.id < o.id)))
     + (SELECT count(*) FROM timers WHERE due_at <= $1) AS busy;

-- name: erase_unsent
SELECT orchestrator_erase($1::text[], $2::text[]);

-- name: edit_message
-- The customer edited a message: the transcript shows the latest text (unless unsent). An
-- edit without text ($3 NULL: Meta did not send it) keeps the stored text; edited_at records
-- the edit either way.
UPDATE messages SET text = coalesce($3, text), edited_at = $4
WHERE conversation_id = $1 AND mid = $2 AND direction = 'in' AND deleted_at IS NULL;
