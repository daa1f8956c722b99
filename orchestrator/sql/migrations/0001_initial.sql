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
CREATE INDEX events_conversation ON events (conversation_id, id);

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
