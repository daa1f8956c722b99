-- The event log, conversations, transcript, outbox and timers. The database holds the
-- invariants: dedup by unique keys, one in-flight outbox row per conversation, valid states.

CREATE TABLE conversations (
    id             bigserial PRIMARY KEY,
    account_id     text        NOT NULL,
    customer_id    text        NOT NULL,
    state          text        NOT NULL DEFAULT 'bot'
                   CHECK (state IN ('bot', 'pending_human', 'human')),
    owner_app      text,
    view           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, customer_id)
);
CREATE INDEX conversations_state ON conversations (state);

-- Bodies that are valid JSON but not a webhook we understand: kept raw, never dropped.
CREATE TABLE raw_deliveries (
    id           bigserial PRIMARY KEY,
    app          text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    body         text        NOT NULL,
    problem      text        NOT NULL
);

CREATE TABLE events (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint REFERENCES conversations (id),
    account_id       text        NOT NULL,
    dedup_key        text        NOT NULL,
    kind             text        NOT NULL,
    source           text        NOT NULL
                     CHECK (source IN ('messaging', 'standby', 'changes', 'action', 'timer', 'system')),
    received_by      text,
    mid              text,
    occurred_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    payload          jsonb       NOT NULL,
    erased           boolean     NOT NULL DEFAULT false,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'done', 'failed')),
    processed_at     timestamptz,
    result           jsonb,
    error            text,
    UNIQUE (account_id, dedup_key)
);
-- The worker's view: per conversation, pending events in their processing order.
CREATE INDEX events_pending ON events (conversation_id, occurred_at, id) WHERE status = 'pending';
CREATE INDEX events_mid ON events (account_id, mid) WHERE mid IS NOT NULL;
-- The claim query looks at the oldest pending events first (bounded), instead of grouping
-- every pending event: constant work per claim however deep the backlog.
CREATE INDEX events_pending_arrival ON events (id) WHERE status = 'pending';

-- The transcript: what the customer said and what was said to them.
CREATE TABLE messages (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint      NOT NULL REFERENCES conversations (id),
    mid              text,
    direction        text        NOT NULL CHECK (direction IN ('in', 'out')),
    author           text        NOT NULL,
    purpose          text,
    text             text,
    attachments      jsonb,
    created_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    outbox_id        bigint
);
CREATE UNIQUE INDEX messages_mid ON messages (conversation_id, mid) WHERE mid IS NOT NULL;
CREATE INDEX messages_conversation ON messages (conversation_id, created_at, id);

CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint      NOT NULL REFERENCES conversations (id),
    event_id         bigint REFERENCES events (id),
    kind             text        NOT NULL
                     CHECK (kind IN ('send_message', 'private_reply', 'sender_action',
                                     'thread_control', 'deliver')),
    app              text        NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'doing', 'done', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    available_at     timestamptz NOT NULL DEFAULT now(),
    locked_at        timestamptz,
    locked_by        text,
    last_error       text,
    result           jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    done_at          timestamptz
);
CREATE INDEX outbox_open ON outbox (conversation_id, id) WHERE status IN ('pending', 'doing');
CREATE INDEX outbox_ready ON outbox (available_at, id) WHERE status = 'pending';
CREATE INDEX outbox_dead ON outbox (id) WHERE status = 'dead';
-- Per-conversation order for effects: never two rows of one conversation in flight.
CREATE UNIQUE INDEX outbox_one_in_flight ON outbox (conversation_id) WHERE status = 'doing';

CREATE TABLE timers (
    conversation_id  bigint      NOT NULL REFERENCES conversations (id),
    kind             text        NOT NULL,
    due_at           timestamptz NOT NULL,
    generation       integer     NOT NULL,
    PRIMARY KEY (conversation_id, kind)
);
CREATE INDEX timers_due ON timers (due_at);

-- The one erase mechanism for an unsend (privacy): the stored content of those mids, in the
-- event log and in the transcript, is replaced by a tombstone; the deletion event stays as
-- the record. Called by intake (at once) and by the worker when it processes the deletion
-- (the guarantee: per-conversation order puts that after the message's own processing).
CREATE FUNCTION orchestrator_erase(p_account_ids text[], p_mids text[]) RETURNS void
LANGUAGE sql VOLATILE AS $$
    WITH gone AS (
        SELECT DISTINCT t.account_id, t.mid FROM unnest(p_account_ids, p_mids) AS t(account_id, mid)
        WHERE t.mid IS NOT NULL
    ), erased_events AS (
        UPDATE events ev
        SET payload = jsonb_build_object('erased', true, 'mid', ev.mid), erased = true
        FROM gone
        WHERE ev.account_id = gone.account_id AND ev.mid = gone.mid
          AND ev.kind IN ('message', 'message_edit') AND NOT ev.erased
        RETURNING ev.id
    )
    UPDATE messages m
    SET text = NULL, attachments = NULL, deleted_at = coalesce(m.deleted_at, now())
    FROM gone, conversations c
    WHERE m.conversation_id = c.id AND c.account_id = gone.account_id
      AND m.mid = gone.mid AND m.direction = 'in' AND m.deleted_at IS NULL;
$$;

-- Webhook intake in ONE round trip: the request path is signature check, parse, one call.
-- A function call is a single statement, hence atomic: every item of the POST (and the raw
-- body when flagged) is committed together or not at all. Each statement inside sees a new
-- snapshot (READ COMMITTED, VOLATILE), so a conversation created concurrently by another
-- intake is found by the events insert. No NOTIFY in here (PostgreSQL serialises notifying
-- commits; the service coalesces one NOTIFY per burst, see wakeup.py), and the erase step
-- only when the POST carries an unsend: a message whose unsend arrived *earlier* is erased by
-- the worker before it is processed (processing.py), off the request path.
CREATE FUNCTION orchestrator_intake(
    p_received_by text,
    p_account_ids text[], p_customer_ids text[], p_dedup_keys text[], p_kinds text[],
    p_sources text[], p_mids text[], p_occurred timestamptz[], p_payloads text[],
    p_raw_body text, p_raw_problem text
) RETURNS TABLE (event_id bigint, event_kind text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_raw_body IS NOT NULL THEN
        INSERT INTO raw_deliveries (app, body, problem)
        VALUES (p_received_by, p_raw_body, p_raw_problem);
    END IF;
    IF coalesce(array_length(p_dedup_keys, 1), 0) = 0 THEN
        RETURN;
    END IF;

    -- Sorted so that two intakes creating the same new conversations never deadlock.
    INSERT INTO conversations (account_id, customer_id)
    SELECT DISTINCT a, c FROM unnest(p_account_ids, p_customer_ids) AS t(a, c)
    WHERE c IS NOT NULL
    ORDER BY a, c
    ON CONFLICT (account_id, customer_id) DO NOTHING;

    RETURN QUERY
    INSERT INTO events AS e (conversation_id, account_id, dedup_key, kind, source, received_by,
                             mid, occurred_at, payload)
    SELECT c.id, t.account_id, t.dedup_key, t.kind, t.source, p_received_by, t.mid,
           t.occurred_at, t.payload::jsonb
    FROM unnest(p_account_ids, p_customer_ids, p_dedup_keys, p_kinds, p_sources, p_mids,
                p_occurred, p_payloads)
         WITH ORDINALITY AS t(account_id, customer_id, dedup_key, kind, source, mid,
                              occurred_at, payload, ord)
    LEFT JOIN conversations c ON c.account_id = t.account_id AND c.customer_id = t.customer_id
    ORDER BY t.ord
    ON CONFLICT (account_id, dedup_key) DO NOTHING
    RETURNING e.id, e.kind;

    -- Privacy: an unsend erases the stored content of that mid at once.
    IF 'message_deleted' = ANY (p_kinds) THEN
        PERFORM orchestrator_erase(
            array_agg(t.account_id), array_agg(t.mid))
        FROM unnest(p_account_ids, p_mids, p_kinds) AS t(account_id, mid, kind)
        WHERE t.kind = 'message_deleted' AND t.mid IS NOT NULL;
    END IF;
END;
$$;
