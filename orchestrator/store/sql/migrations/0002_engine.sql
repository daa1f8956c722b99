-- The engine at traffic: lanes, leases and retention.
--
-- Lanes. A conversation's outbox rows are ordered per lane, not across all of them: 'meta'
-- holds everything that reaches Meta (sends, reactions, thread control) in decision order;
-- each sub-app's deliveries have a lane of their own ('app:<name>'). A helpdesk that is down
-- therefore never holds back the bot's replies, and the customer-facing order is untouched.
--
-- Leases. A claimed row carries a unique token and an expiry that its dispatcher refreshes
-- while the call runs; completions are accepted only with the token. A dispatcher that dies
-- stops refreshing and its rows come back after a few seconds, not minutes; a slow one can
-- no longer have its row "recovered" under it and sent twice.

ALTER TABLE outbox ADD COLUMN lane text NOT NULL DEFAULT 'meta';
ALTER TABLE outbox ADD COLUMN account_id text;
ALTER TABLE outbox ADD COLUMN lease_token uuid;
ALTER TABLE outbox ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE outbox DROP COLUMN locked_by;
ALTER TABLE outbox DROP COLUMN locked_at;
UPDATE outbox SET lane = 'app:' || app WHERE kind = 'deliver';
UPDATE outbox o SET account_id = c.account_id FROM conversations c WHERE c.id = o.conversation_id;

DROP INDEX outbox_one_in_flight;
DROP INDEX outbox_open;
DROP INDEX outbox_ready;
-- Per-conversation, per-lane order: never two rows of one lane in flight.
CREATE UNIQUE INDEX outbox_one_in_flight ON outbox (conversation_id, lane) WHERE status = 'doing';
-- The dispatcher's claim reads the open rows as (conversation, lane) heads.
CREATE INDEX outbox_open ON outbox (conversation_id, lane, id) WHERE status IN ('pending', 'doing');
CREATE INDEX outbox_leases ON outbox (lease_expires_at) WHERE status = 'doing';
-- The events that rows still open or dead-lettered point at are kept by retention. The
-- foreign key from outbox.event_id is dropped: checking it on every event deleted needed an
-- index on every outbox row, for a reference that is only informational once a row is done.
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_fkey;
CREATE INDEX outbox_kept_events ON outbox (event_id) WHERE status <> 'done';
-- The claim queue no longer scans the oldest pending events (one busy conversation filled
-- that window and starved the rest); it walks the distinct conversations of events_pending.
DROP INDEX events_pending_arrival;

-- Retention: processed events and done outbox rows older than the configured age are
-- deleted in bounded batches. Events still referenced by a kept outbox row (dead letters,
-- open rows) stay. Transcripts follow the business's own retention and unsends, not this.
-- Both walk the primary key from the oldest row (ids grow with time, and what is older has
-- already been deleted), so no index on the age is needed: an index more on these two
-- tables would be written by every message to serve one query a minute.
CREATE FUNCTION orchestrator_prune(p_before timestamptz, p_limit integer)
RETURNS TABLE (outbox_rows bigint, event_rows bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n_outbox bigint;
    n_events bigint;
BEGIN
    WITH old AS (
        SELECT o.id FROM outbox o
        WHERE o.status = 'done' AND o.done_at < p_before
        ORDER BY o.id LIMIT p_limit FOR UPDATE SKIP LOCKED
    )
    DELETE FROM outbox o USING old WHERE o.id = old.id;
    GET DIAGNOSTICS n_outbox = ROW_COUNT;
    WITH old AS (
        SELECT e.id FROM events e
        WHERE e.status <> 'pending' AND e.processed_at < p_before
          AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = e.id AND o.status <> 'done')
        ORDER BY e.id LIMIT p_limit FOR UPDATE SKIP LOCKED
    )
    DELETE FROM events e USING old WHERE e.id = old.id;
    GET DIAGNOSTICS n_events = ROW_COUNT;
    RETURN QUERY SELECT n_outbox, n_events;
END;
$$;

-- The heads of open (conversation, lane) queues, oldest first: a row is claimable only when
-- it is the oldest open row of its lane, and the partial unique index forbids two in flight
-- per lane. Retries stay on the same row, so order holds. Accounts in $3 are paused
-- (throttled by Meta): their rows wait. Each claim gets a fresh lease token and an expiry
-- that the dispatcher refreshes while the call runs. `status = 'pending'` is re-checked on
-- the locked row, so a head completed by another process meanwhile is never taken again.
-- A function so that its plan can be pinned: `enable_seqscan = off` keeps the claim on the
-- partial index of open rows even when the table's statistics are stale (a queue table's
-- row counts change faster than autovacuum analyses it, and a sequential scan of every done
-- row on each claim cost milliseconds).
CREATE FUNCTION orchestrator_claim_outbox(
    p_now timestamptz, p_limit integer, p_paused text[], p_lease_s double precision
) RETURNS TABLE (id bigint, conversation_id bigint, event_id bigint, kind text, app text,
                 lane text, payload jsonb, attempts integer, created_at timestamptz,
                 lease_token uuid, account_id text, customer_id text, state text,
                 owner_app text, view jsonb)
LANGUAGE sql VOLATILE SET enable_seqscan = off AS $$
WITH heads AS (
    SELECT DISTINCT ON (conversation_id, lane) id, status, available_at, account_id
    FROM outbox WHERE status IN ('pending', 'doing')
    ORDER BY conversation_id, lane, id
), ready AS (
    SELECT id FROM heads
    WHERE status = 'pending' AND available_at <= p_now
      AND NOT (coalesce(account_id, '') = ANY (p_paused))
    ORDER BY available_at, id
    LIMIT p_limit
), locked AS (
    SELECT o.id FROM outbox o
    WHERE o.id IN (SELECT id FROM ready) AND o.status = 'pending'
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox o
SET status = 'doing', attempts = o.attempts + 1, lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => p_lease_s)
FROM locked, conversations c
WHERE o.id = locked.id AND c.id = o.conversation_id
RETURNING o.id, o.conversation_id, o.event_id, o.kind, o.app, o.lane, o.payload, o.attempts,
          o.created_at, o.lease_token, c.account_id, c.customer_id, c.state, c.owner_app,
          c.view;
$$;

-- Queue tables change faster than the default autovacuum thresholds notice.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- The worker's writes for one batch in ONE round trip (see engine/writes.py): conversation
-- rows, transcript lines, outbox rows in decision order, timers set and cancelled, and the
-- events' outcomes. Each part runs only when it has rows.
CREATE FUNCTION orchestrator_apply(
    c_ids bigint[], c_states text[], c_owners text[], c_views text[],
    m_cids bigint[], m_mids text[], m_dirs text[], m_authors text[], m_purposes text[],
    m_texts text[], m_attachments text[], m_created timestamptz[], m_deleted timestamptz[],
    m_outbox bigint[],
    o_ids bigint[], o_cids bigint[], o_accounts text[], o_events bigint[], o_kinds text[],
    o_apps text[], o_lanes text[], o_payloads text[], o_statuses text[], o_results text[],
    o_available timestamptz[], o_errors text[],
    t_cids bigint[], t_kinds text[], t_due timestamptz[], t_generations integer[],
    x_cids bigint[], x_kinds text[],
    f_ids bigint[], f_statuses text[], f_results text[], f_errors text[], f_at timestamptz[]
) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF cardinality(c_ids) > 0 THEN
UPDATE conversations c SET state = u.state, owner_app = u.owner_app, view = u.view::jsonb,
                           updated_at = now()
FROM unnest(c_ids::bigint[], c_states::text[], c_owners::text[], c_views::text[]) AS u(id, state, owner_app, view)
WHERE c.id = u.id;
    END IF;
    IF cardinality(m_cids) > 0 THEN
INSERT INTO messages (conversation_id, mid, direction, author, purpose, text, attachments,
                      created_at, deleted_at, outbox_id)
SELECT t.cid, t.mid, t.direction, t.author, t.purpose, t.text, t.attachments::jsonb,
       t.created_at, t.deleted_at, t.outbox_id
FROM unnest(m_cids::bigint[], m_mids::text[], m_dirs::text[], m_authors::text[], m_purposes::text[], m_texts::text[],
            m_attachments::text[], m_created::timestamptz[], m_deleted::timestamptz[], m_outbox::bigint[])
     WITH ORDINALITY AS t(cid, mid, direction, author, purpose, text, attachments, created_at,
                          deleted_at, outbox_id, ord)
ORDER BY t.ord
ON CONFLICT (conversation_id, mid) WHERE mid IS NOT NULL DO NOTHING;
    END IF;
    IF cardinality(o_cids) > 0 THEN
INSERT INTO outbox (id, conversation_id, account_id, event_id, kind, app, lane, payload,
                    status, result, available_at, done_at, attempts, last_error)
SELECT coalesce(t.id, nextval('outbox_id_seq')), t.cid, t.account_id, t.event_id, t.kind,
       t.app, t.lane, t.payload::jsonb, t.status, t.result::jsonb, t.available_at,
       CASE WHEN t.status IN ('done', 'dead') THEN now() END,
       CASE WHEN t.status IN ('done', 'dead') THEN 1 ELSE 0 END, t.last_error
FROM unnest(o_ids::bigint[], o_cids::bigint[], o_accounts::text[], o_events::bigint[], o_kinds::text[], o_apps::text[],
            o_lanes::text[], o_payloads::text[], o_statuses::text[], o_results::text[], o_available::timestamptz[], o_errors::text[])
     WITH ORDINALITY AS t(id, cid, account_id, event_id, kind, app, lane, payload, status,
                          result, available_at, last_error, ord)
ORDER BY t.ord;
    END IF;
    IF cardinality(t_cids) > 0 THEN
INSERT INTO timers (conversation_id, kind, due_at, generation)
SELECT * FROM unnest(t_cids::bigint[], t_kinds::text[], t_due::timestamptz[], t_generations::integer[])
ON CONFLICT (conversation_id, kind)
DO UPDATE SET due_at = excluded.due_at, generation = excluded.generation;
    END IF;
    IF cardinality(x_cids) > 0 THEN
DELETE FROM timers t USING unnest(x_cids::bigint[], x_kinds::text[]) AS u(cid, kind)
WHERE t.conversation_id = u.cid AND t.kind = u.kind;
    END IF;
    IF cardinality(f_ids) > 0 THEN
UPDATE events e SET status = u.status, processed_at = u.at, result = u.result::jsonb,
                    error = u.error
FROM unnest(f_ids::bigint[], f_statuses::text[], f_results::text[], f_errors::text[], f_at::timestamptz[])
     AS u(id, status, result, error, at)
WHERE e.id = u.id;
    END IF;
END;
$$;
