-- Hand-off: rows go from the decision to the dispatcher without a claim query (issue 8).
--
-- Before, every row a worker wrote waited for the dispatcher's `orchestrator_claim_outbox`,
-- which walks the heads of every open lane: one more round trip per batch, and a scan that
-- grows with the backlog. Now the statement that writes a lane's rows also claims the lane's
-- head when it is free (no row of the lane in flight, none older waiting) and returns it
-- with its lease token; the statement that completes a row claims the next head of the same
-- lane. The claim query stays for what nobody handed over: retries coming due, rows
-- recovered from a dispatcher that died, accounts whose throttle pause ended, and lanes
-- whose head moved in another process.
--
-- One rule decides a claim in all three places: `orchestrator_claim_lanes` below takes the
-- oldest open row of each given lane, and only if it is pending, due, and its account is
-- not paused. The unique index `outbox_one_in_flight` still guarantees one row in flight per
-- lane whoever claims; a claim that loses a race to another process claims nothing.

-- The heads of the given (conversation, lane) pairs, claimed with a fresh lease; `clock_
-- timestamp()` because a worker's transaction may be long (an in-process app may take
-- seconds), and the lease must run from the claim, not from the transaction's start.
CREATE FUNCTION orchestrator_claim_lanes(
    p_cids bigint[], p_lanes text[], p_now timestamptz, p_limit integer, p_paused text[],
    p_lease_s double precision
) RETURNS TABLE (id bigint, conversation_id bigint, event_id bigint, kind text, app text,
                 lane text, payload jsonb, attempts integer, created_at timestamptz,
                 lease_token uuid, account_id text, customer_id text, state text,
                 owner_app text, view jsonb)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    IF p_limit <= 0 OR cardinality(p_cids) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH lanes AS (
        SELECT DISTINCT u.cid, u.lane FROM unnest(p_cids, p_lanes) AS u(cid, lane)
    ), heads AS (
        SELECT h.id FROM lanes l
        CROSS JOIN LATERAL (
            SELECT o.id, o.status, o.available_at, o.account_id FROM outbox o
            WHERE o.conversation_id = l.cid AND o.lane = l.lane
              AND o.status IN ('pending', 'doing')
            ORDER BY o.id LIMIT 1
        ) h
        WHERE h.status = 'pending' AND h.available_at <= p_now
          AND NOT (coalesce(h.account_id, '') = ANY (p_paused))
        ORDER BY h.id
        LIMIT p_limit
    ), locked AS (
        SELECT o.id FROM outbox o
        WHERE o.id IN (SELECT heads.id FROM heads) AND o.status = 'pending'
        FOR UPDATE OF o SKIP LOCKED
    )
    UPDATE outbox o
    SET status = 'doing', attempts = o.attempts + 1, lease_token = gen_random_uuid(),
        lease_expires_at = clock_timestamp() + make_interval(secs => p_lease_s)
    FROM locked, conversations c
    WHERE o.id = locked.id AND c.id = o.conversation_id
    RETURNING o.id, o.conversation_id, o.event_id, o.kind, o.app, o.lane, o.payload,
              o.attempts, o.created_at, o.lease_token, c.account_id, c.customer_id, c.state,
              c.owner_app, c.view;
EXCEPTION WHEN unique_violation THEN
    -- Another process claimed one of these heads in the same instant: it sends it; we
    -- claim nothing this time (the caller's own writes are untouched: this block is a
    -- subtransaction of its own).
    RETURN;
END;
$$;

-- The worker's writes (orchestrator_apply, migrations/0002) and the claim of the lanes they
-- wrote, in one round trip. p_limit 0: write only (no dispatcher in this process, or it is
-- full).
CREATE FUNCTION orchestrator_apply_claim(
    c_ids bigint[], c_states text[], c_owners text[], c_views text[],
    m_cids bigint[], m_mids text[], m_dirs text[], m_authors text[], m_purposes text[],
    m_texts text[], m_attachments text[], m_created timestamptz[], m_deleted timestamptz[],
    m_outbox bigint[],
    o_ids bigint[], o_cids bigint[], o_accounts text[], o_events bigint[], o_kinds text[],
    o_apps text[], o_lanes text[], o_payloads text[], o_statuses text[], o_results text[],
    o_available timestamptz[], o_errors text[],
    t_cids bigint[], t_kinds text[], t_due timestamptz[], t_generations integer[],
    x_cids bigint[], x_kinds text[],
    f_ids bigint[], f_statuses text[], f_results text[], f_errors text[], f_at timestamptz[],
    p_now timestamptz, p_limit integer, p_paused text[], p_lease_s double precision
) RETURNS TABLE (id bigint, conversation_id bigint, event_id bigint, kind text, app text,
                 lane text, payload jsonb, attempts integer, created_at timestamptz,
                 lease_token uuid, account_id text, customer_id text, state text,
                 owner_app text, view jsonb)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    pend_cids bigint[];
    pend_lanes text[];
BEGIN
    PERFORM orchestrator_apply(
        c_ids, c_states, c_owners, c_views,
        m_cids, m_mids, m_dirs, m_authors, m_purposes, m_texts, m_attachments, m_created,
        m_deleted, m_outbox,
        o_ids, o_cids, o_accounts, o_events, o_kinds, o_apps, o_lanes, o_payloads,
        o_statuses, o_results, o_available, o_errors,
        t_cids, t_kinds, t_due, t_generations, x_cids, x_kinds,
        f_ids, f_statuses, f_results, f_errors, f_at);
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(u.cid), array_agg(u.lane) INTO pend_cids, pend_lanes
    FROM unnest(o_cids, o_lanes, o_statuses) AS u(cid, lane, status)
    WHERE u.status = 'pending';
    IF pend_cids IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM orchestrator_claim_lanes(pend_cids, pend_lanes, p_now, p_limit,
                                                        p_paused, p_lease_s);
END;
$$;

-- Completions (the statement `outbox_done` of queries.sql, unchanged) and the claim of the
-- next head of each completed lane, in one round trip. Rows: `done` true for each completed
-- row (only `id` set), false for each newly claimed head.
CREATE FUNCTION orchestrator_complete(
    p_ids bigint[], p_tokens uuid[], p_results text[],
    l_cids bigint[], l_mids text[], l_authors text[], l_purposes text[], l_texts text[],
    l_attachments text[], l_outbox bigint[], p_at timestamptz,
    p_now timestamptz, p_limit integer, p_paused text[], p_lease_s double precision
) RETURNS TABLE (done boolean, id bigint, conversation_id bigint, event_id bigint, kind text,
                 app text, lane text, payload jsonb, attempts integer,
                 created_at timestamptz, lease_token uuid, account_id text,
                 customer_id text, state text, owner_app text, view jsonb)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    done_ids bigint[];
    done_cids bigint[];
    done_lanes text[];
BEGIN
    WITH d AS (
        UPDATE outbox o SET status = 'done', done_at = now(), result = u.result::jsonb,
                            lease_token = NULL, lease_expires_at = NULL, last_error = NULL
        FROM unnest(p_ids, p_tokens, p_results) AS u(id, token, result)
        WHERE o.id = u.id AND o.lease_token = u.token AND o.status = 'doing'
        RETURNING o.id, o.conversation_id, o.lane
    )
    SELECT array_agg(d.id), array_agg(d.conversation_id), array_agg(d.lane)
    INTO done_ids, done_cids, done_lanes FROM d;
    IF done_ids IS NULL THEN
        RETURN;
    END IF;
    -- Meta's echo of this very message may have been transcribed first (the echo webhook
    -- can arrive before our completion is written): our record knows more (which row,
    -- why), so it completes the echo's line instead of being dropped.
    INSERT INTO messages (conversation_id, mid, direction, author, purpose, text, attachments,
                          created_at, outbox_id)
    SELECT t.cid, t.mid, 'out', t.author, t.purpose, t.text, t.attachments::jsonb, p_at,
           t.outbox_id
    FROM unnest(l_cids, l_mids, l_authors, l_purposes, l_texts, l_attachments, l_outbox)
         WITH ORDINALITY AS t(cid, mid, author, purpose, text, attachments, outbox_id, ord)
    WHERE t.outbox_id = ANY (done_ids)
    ORDER BY t.ord
    ON CONFLICT (conversation_id, mid) WHERE mid IS NOT NULL DO UPDATE
    SET outbox_id = excluded.outbox_id, purpose = excluded.purpose, author = excluded.author
    WHERE messages.outbox_id IS NULL AND messages.direction = 'out';
    RETURN QUERY SELECT true, u.id, NULL::bigint, NULL::bigint, NULL::text, NULL::text,
                        NULL::text, NULL::jsonb, NULL::integer, NULL::timestamptz, NULL::uuid,
                        NULL::text, NULL::text, NULL::text, NULL::text, NULL::jsonb
                 FROM unnest(done_ids) AS u(id);
    RETURN QUERY SELECT false, h.* FROM orchestrator_claim_lanes(done_cids, done_lanes, p_now,
                                                                 p_limit, p_paused,
                                                                 p_lease_s) AS h;
END;
$$;

-- Intake returns each stored event's item number on the happy path too (it did only when
-- replaying item by item), so one call can store several POSTs and answer each its own
-- (store/intake.py GroupCommit); `p_items` gives each item its number within its own POST,
-- for the raw_deliveries row of an item PostgreSQL refuses. Otherwise as in migrations/0003;
-- the 12-argument form calls this one.
CREATE FUNCTION orchestrator_intake(
    p_received_by text,
    p_account_ids text[], p_customer_ids text[], p_dedup_keys text[], p_kinds text[],
    p_sources text[], p_mids text[], p_occurred timestamptz[], p_payloads text[],
    p_problems text[], p_raw_bytes bytea, p_raw_problem text, p_items integer[]
) RETURNS TABLE (event_id bigint, event_kind text, item integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer := coalesce(array_length(p_dedup_keys, 1), 0);
    ids bigint[];
    kinds text[];
    ords integer[];
    i integer;
    one_id bigint;
    one_kind text;
BEGIN
    IF p_raw_bytes IS NOT NULL THEN
        INSERT INTO raw_deliveries (app, body, body_bytes, problem)
        VALUES (p_received_by, orchestrator_text_or_null(p_raw_bytes), p_raw_bytes,
                coalesce(p_raw_problem, 'flagged'));
    END IF;
    IF n = 0 THEN
        RETURN;
    END IF;

    BEGIN
        -- Sorted so that two intakes creating the same new conversations never deadlock.
        INSERT INTO conversations (account_id, customer_id)
        SELECT DISTINCT a, c FROM unnest(p_account_ids, p_customer_ids) AS t(a, c)
        WHERE c IS NOT NULL
        ORDER BY a, c
        ON CONFLICT (account_id, customer_id) DO NOTHING;

        WITH ins AS (
            INSERT INTO events AS e (conversation_id, account_id, dedup_key, kind, source,
                                     received_by, mid, occurred_at, payload, intake_problem)
            SELECT c.id, t.account_id, t.dedup_key, t.kind, t.source, p_received_by, t.mid,
                   t.occurred_at, t.payload::jsonb, p_problems[t.ord]
            FROM unnest(p_account_ids, p_customer_ids, p_dedup_keys, p_kinds, p_sources,
                        p_mids, p_occurred, p_payloads)
                 WITH ORDINALITY AS t(account_id, customer_id, dedup_key, kind, source, mid,
                                      occurred_at, payload, ord)
            LEFT JOIN conversations c
                   ON c.account_id = t.account_id AND c.customer_id = t.customer_id
            ORDER BY t.ord
            ON CONFLICT (account_id, dedup_key) DO NOTHING
            RETURNING e.id, e.kind, e.account_id, e.dedup_key
        ), numbered AS (
            -- The item each stored event came from (the first, if a batch repeats one):
            -- POSTs stored together (store/intake.py GroupCommit) each get theirs back.
            SELECT ins.id, ins.kind, min(t.ord)::integer AS ord
            FROM ins
            JOIN unnest(p_account_ids, p_dedup_keys) WITH ORDINALITY AS t(account_id, dedup_key, ord)
              ON t.account_id = ins.account_id AND t.dedup_key = ins.dedup_key
            GROUP BY ins.id, ins.kind
        )
        SELECT array_agg(numbered.id ORDER BY numbered.id),
               array_agg(numbered.kind ORDER BY numbered.id),
               array_agg(numbered.ord ORDER BY numbered.id)
        INTO ids, kinds, ords FROM numbered;
        -- Rows come back in insertion order (ids ascending), with their item numbers.
        RETURN QUERY SELECT u.id, u.kind, u.ord
                     FROM unnest(ids, kinds, ords) AS u(id, kind, ord) WHERE u.id IS NOT NULL;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation
                   OR program_limit_exceeded THEN
        -- Some content PostgreSQL refuses: replay item by item, each isolated.
        FOR i IN 1 .. n LOOP
            BEGIN
                IF p_customer_ids[i] IS NOT NULL THEN
                    INSERT INTO conversations (account_id, customer_id)
                    VALUES (p_account_ids[i], p_customer_ids[i])
                    ON CONFLICT (account_id, customer_id) DO NOTHING;
                END IF;
                one_id := NULL;
                INSERT INTO events AS e (conversation_id, account_id, dedup_key, kind, source,
                                         received_by, mid, occurred_at, payload,
                                         intake_problem)
                SELECT c.id, p_account_ids[i], p_dedup_keys[i], p_kinds[i], p_sources[i],
                       p_received_by, p_mids[i], p_occurred[i], p_payloads[i]::jsonb,
                       p_problems[i]
                FROM (SELECT 1) AS one
                LEFT JOIN conversations c
                       ON c.account_id = p_account_ids[i] AND c.customer_id = p_customer_ids[i]
                ON CONFLICT (account_id, dedup_key) DO NOTHING
                RETURNING e.id, e.kind INTO one_id, one_kind;
                IF one_id IS NOT NULL THEN
                    event_id := one_id; event_kind := one_kind; item := i;
                    RETURN NEXT;
                END IF;
            EXCEPTION WHEN data_exception OR integrity_constraint_violation
                           OR program_limit_exceeded THEN
                INSERT INTO raw_deliveries (app, body, body_bytes, problem, item)
                VALUES (p_received_by, NULL, convert_to(p_payloads[i], 'UTF8'),
                        'item ' || coalesce(p_items[i], i) || ' (' || coalesce(p_kinds[i], '?')
                            || ') refused by PostgreSQL: SQLSTATE ' || SQLSTATE,
                        coalesce(p_items[i], i));
                event_id := NULL; event_kind := 'quarantined'; item := i;
                RETURN NEXT;
            END;
        END LOOP;
    END;

    -- Privacy: an unsend erases the stored content of that mid at once.
    IF 'message_deleted' = ANY (p_kinds) THEN
        PERFORM orchestrator_erase(array_agg(t.account_id), array_agg(t.mid))
        FROM unnest(p_account_ids, p_mids, p_kinds) AS t(account_id, mid, kind)
        WHERE t.kind = 'message_deleted' AND t.mid IS NOT NULL;
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION orchestrator_intake(
    p_received_by text,
    p_account_ids text[], p_customer_ids text[], p_dedup_keys text[], p_kinds text[],
    p_sources text[], p_mids text[], p_occurred timestamptz[], p_payloads text[],
    p_problems text[], p_raw_bytes bytea, p_raw_problem text
) RETURNS TABLE (event_id bigint, event_kind text, item integer)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM orchestrator_intake(p_received_by, p_account_ids, p_customer_ids,
                                      p_dedup_keys, p_kinds, p_sources, p_mids, p_occurred,
                                      p_payloads, p_problems, p_raw_bytes, p_raw_problem,
                                      NULL::integer[]);
$$;

-- A worker's claim in one round trip: the conversations (`claim_conversations` of
-- queries.sql, the loose index scan of migrations/0002) and then their head events, as two
-- statements of one function: the second takes a fresh snapshot after the row locks are
-- held, so it never sees as pending the events another worker committed just before we got
-- a lock (which one statement would). Rows: one per event, with its conversation's columns
-- (the view only on the conversation's first row).
CREATE FUNCTION orchestrator_claim_batch(p_limit integer, p_per_conversation integer)
RETURNS TABLE (c_id bigint, c_account_id text, c_customer_id text, c_state text,
               c_owner_app text, c_view jsonb, conversation_id bigint, id bigint, kind text,
               source text, received_by text, mid text, occurred_at timestamptz,
               received_at timestamptz, payload jsonb, erased boolean, unsent boolean)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    cids bigint[];
BEGIN
    WITH RECURSIVE pc(cid) AS (
        (SELECT ev.conversation_id FROM events ev
         WHERE ev.status = 'pending' AND ev.conversation_id IS NOT NULL
         ORDER BY ev.conversation_id LIMIT 1)
        UNION ALL
        SELECT (SELECT e.conversation_id FROM events e
                WHERE e.status = 'pending' AND e.conversation_id > pc.cid
                ORDER BY e.conversation_id LIMIT 1)
        FROM pc WHERE pc.cid IS NOT NULL
    ), heads AS (
        SELECT pc.cid, h.id AS head_id FROM pc
        CROSS JOIN LATERAL (SELECT e.id FROM events e
                            WHERE e.conversation_id = pc.cid AND e.status = 'pending'
                            ORDER BY e.occurred_at, e.id LIMIT 1) h
        WHERE pc.cid IS NOT NULL
    ), locked AS (
        SELECT c.id, heads.head_id FROM conversations c JOIN heads ON heads.cid = c.id
        ORDER BY heads.head_id
        FOR NO KEY UPDATE OF c SKIP LOCKED
        LIMIT p_limit
    )
    SELECT array_agg(locked.id ORDER BY locked.head_id) INTO cids FROM locked;
    IF cids IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT c.id, c.account_id, c.customer_id, c.state, c.owner_app,
           -- The view once per conversation (its first event's row): it is the largest
           -- column, and decoding it again for every event was measurable.
           CASE WHEN row_number() OVER (PARTITION BY claimed.ord ORDER BY e.occurred_at, e.id) = 1
                THEN c.view END,
           e.conversation_id, e.id, e.kind, e.source, e.received_by, e.mid, e.occurred_at,
           e.received_at, e.payload, e.erased,
           (e.kind IN ('message', 'message_edit') AND NOT e.erased AND e.mid IS NOT NULL
            AND EXISTS (SELECT 1 FROM events d WHERE d.account_id = e.account_id
                        AND d.mid = e.mid AND d.kind = 'message_deleted'))
    FROM unnest(cids) WITH ORDINALITY AS claimed(cid, ord)
    JOIN conversations c ON c.id = claimed.cid
    CROSS JOIN LATERAL (
        SELECT * FROM events x
        WHERE x.conversation_id = claimed.cid AND x.status = 'pending'
        ORDER BY x.occurred_at, x.id LIMIT p_per_conversation
    ) e
    ORDER BY claimed.ord, e.occurred_at, e.id;
END;
$$;
