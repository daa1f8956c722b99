-- Named queries: `-- name: <query_name>` starts one. Parameters are always bound.

-- name: notify_events
SELECT pg_notify('orchestrator_events', '');

-- name: claim_batch
-- Up to $1 conversations with pending events, those whose head event is oldest first.
--
-- The distinct conversations are walked on events_pending (a loose index scan: one probe per
-- conversation however many events it has waiting), so one busy conversation never hides the
-- others. The row locks are held for the whole processing transaction: one conversation is
-- never handled by two workers at once (any process, any machine); a crashed worker's locks
-- die with its session. NO KEY UPDATE, not UPDATE: it excludes other workers but not the KEY
-- SHARE locks that foreign keys take, so intake and the outbox can insert rows referencing a
-- conversation while it is processed. The events are read by a second statement of the
-- function on purpose: its fresh snapshot sees the work another worker committed just
-- before we got the lock (one statement would see those events as still pending).
--
-- Order rule within a conversation: by the event's own timestamp (Meta may deliver out of
-- order after failures), then by arrival; at most $2 per conversation. `unsent`: a message
-- whose unsend was stored before it; the worker erases it before anything else happens.
--
-- One round trip (migrations/0010_handoff.sql): rows are events with their conversation's
-- columns (c_*), conversations in claim order.
SELECT * FROM orchestrator_claim_batch($1, $2);

-- name: orphan_events
-- Events that concern no conversation (app_roles, mentions): recorded, then marked done.
UPDATE events SET status = 'done', processed_at = now(),
                  result = jsonb_build_object('note', 'no conversation: recorded only')
WHERE id IN (SELECT id FROM events WHERE status = 'pending' AND conversation_id IS NULL
             ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
RETURNING id, kind, account_id, source, payload;

-- name: insert_messages
-- The transcript, many lines at once (in the given order).
INSERT INTO messages (conversation_id, mid, direction, author, purpose, text, attachments,
                      created_at, deleted_at, outbox_id)
SELECT t.cid, t.mid, t.direction, t.author, t.purpose, t.text, t.attachments::jsonb,
       t.created_at, t.deleted_at, t.outbox_id
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::timestamptz[], $9::timestamptz[], $10::bigint[])
     WITH ORDINALITY AS t(cid, mid, direction, author, purpose, text, attachments, created_at,
                          deleted_at, outbox_id, ord)
ORDER BY t.ord
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

-- name: notify_outbox
SELECT pg_notify('orchestrator_outbox', '');

-- name: apply_claim
-- orchestrator_apply and the claim of the lanes it wrote (migrations/0010_handoff.sql).
SELECT * FROM orchestrator_apply_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                       $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,
                                       $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35,
                                       $36, $37, $38, $39, $40, $41);

-- name: complete_outbox
-- Completions (as outbox_done) and the claim of each completed lane's next head
-- (migrations/0010_handoff.sql).
SELECT * FROM orchestrator_complete($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                    $14, $15);

-- name: draw_outbox_ids
SELECT nextval('outbox_id_seq') AS id FROM generate_series(1, $1);

-- name: claim_outbox
-- See orchestrator_claim_outbox in migrations/0002_engine.sql.
SELECT * FROM orchestrator_claim_outbox($1, $2, $3, $4);

-- name: outbox_done
-- Completions in one statement, with the transcript lines of the sends among them: a row
-- whose lease was lost (its token changed) is not touched, gets no line, and is absent from
-- the answer. $4..$10 are the lines (conversation, mid, author, purpose, text, attachments,
-- outbox id), $11 their time.
WITH done AS (
    UPDATE outbox o SET status = 'done', done_at = now(), result = u.result::jsonb,
                        lease_token = NULL, lease_expires_at = NULL, last_error = NULL
    FROM unnest($1::bigint[], $2::uuid[], $3::text[]) AS u(id, token, result)
    WHERE o.id = u.id AND o.lease_token = u.token AND o.status = 'doing'
    RETURNING o.id
), lines AS (
    INSERT INTO messages (conversation_id, mid, direction, author, purpose, text, attachments,
                          created_at, outbox_id)
    SELECT t.cid, t.mid, 'out', t.author, t.purpose, t.text, t.attachments::jsonb, $11,
           t.outbox_id
    FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                $10::bigint[]) WITH ORDINALITY
         AS t(cid, mid, author, purpose, text, attachments, outbox_id, ord)
    WHERE t.outbox_id IN (SELECT id FROM done)
    ORDER BY t.ord
    -- Meta's echo of this very message may have been transcribed first (the echo webhook
    -- can arrive before our completion is written): our record knows more (which row,
    -- why), so it completes the echo's line instead of being dropped.
    ON CONFLICT (conversation_id, mid) WHERE mid IS NOT NULL DO UPDATE
    SET outbox_id = excluded.outbox_id, purpose = excluded.purpose, author = excluded.author
    WHERE messages.outbox_id IS NULL AND messages.direction = 'out'
)
SELECT id FROM done;

-- name: outbox_retry
-- Back to pending on the same row (order holds); $5 false leaves the attempt uncounted
-- (throttling: Meta asked us to slow down, the row did nothing wrong).
UPDATE outbox SET status = 'pending', available_at = $3, last_error = $4,
                  attempts = CASE WHEN $5 THEN attempts ELSE attempts - 1 END,
                  lease_token = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_token = $2 AND status = 'doing'
RETURNING id;

-- name: outbox_dead
UPDATE outbox SET status = 'dead', done_at = now(), last_error = $3, lease_token = NULL,
                  lease_expires_at = NULL
WHERE id = $1 AND lease_token = $2 AND status = 'doing'
RETURNING id;

-- name: outbox_refresh_leases
UPDATE outbox o SET lease_expires_at = now() + make_interval(secs => $3)
FROM unnest($1::bigint[], $2::uuid[]) AS u(id, token)
WHERE o.id = u.id AND o.lease_token = u.token AND o.status = 'doing';

-- name: outbox_reap
-- Rows whose lease expired: their dispatcher died (or lost the database for longer than the
-- lease). Back to pending — the one window where a message can be sent twice — or dead when
-- the attempt limit is reached.
UPDATE outbox
SET status = CASE WHEN attempts >= $1 THEN 'dead' ELSE 'pending' END,
    done_at = CASE WHEN attempts >= $1 THEN now() END,
    last_error = CASE WHEN attempts >= $1
        THEN 'gave up after ' || attempts || ' attempts; the last one''s dispatcher stopped'
        ELSE 'recovered from a dispatcher that stopped (lease expired)' END,
    lease_token = NULL, lease_expires_at = NULL
WHERE status = 'doing' AND lease_expires_at < now()
RETURNING id, status;

-- name: prune
SELECT outbox_rows, event_rows FROM orchestrator_prune(now() - make_interval(secs => $1), $2);

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

-- name: comment_info
-- For private replies: when the comment was made, and whether we already answered it.
SELECT (SELECT occurred_at FROM events
        WHERE account_id = $1 AND kind IN ('comment', 'live_comment') AND dedup_key = 'comment:' || $2
        LIMIT 1) AS comment_at,
       EXISTS (SELECT 1 FROM outbox
               WHERE conversation_id = $3 AND kind = 'private_reply'
                 AND payload ->> 'comment_id' = $2 AND status <> 'dead') AS already_replied;

-- name: quiescence
-- Nothing left to do at the clock's `now`: no pending event, no lane head claimable or in
-- flight, no timer due. Work scheduled later (backoff, timers, rows queued behind a row that
-- is backing off) waits for the clock.
SELECT (SELECT count(*) FROM events WHERE status = 'pending')
     + (SELECT count(*) FROM (
            SELECT DISTINCT ON (conversation_id, lane) status, available_at
            FROM outbox WHERE status IN ('pending', 'doing')
            ORDER BY conversation_id, lane, id) h
        WHERE h.status = 'doing' OR h.available_at <= $1)
     + (SELECT count(*) FROM timers WHERE due_at <= $1) AS busy;

-- name: erase_unsent
SELECT orchestrator_erase($1::text[], $2::text[]);

-- name: edit_message
-- The customer edited a message: the transcript shows the latest text (unless unsent). An
-- edit without text ($3 NULL: Meta did not send it) keeps the stored text; edited_at records
-- the edit either way.
UPDATE messages SET text = coalesce($3, text), edited_at = $4
WHERE conversation_id = $1 AND mid = $2 AND direction = 'in' AND deleted_at IS NULL;
