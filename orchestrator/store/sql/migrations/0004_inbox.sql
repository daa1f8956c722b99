-- The agent inbox (apps/inbox): agents, their sessions, sign-in attempts, who holds which
-- conversation, private notes, what each agent has read, the audit trail, and the change feed
-- that keeps open inbox pages live across processes.
--
-- The inbox acts on conversations only through the ordered action path (events of kind
-- 'action'); these tables hold what is the inbox's own: people, not platform state.

CREATE TABLE inbox_agents (
    id             bigserial PRIMARY KEY,
    login          text        NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    display_name   text        NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    role           text        NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'admin')),
    password_hash  text        NOT NULL,
    locale         text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);

-- Only a hash of the session token is stored: a copy of the table signs nobody in.
CREATE TABLE inbox_sessions (
    token_hash     bytea       PRIMARY KEY,
    agent_id       bigint      NOT NULL REFERENCES inbox_agents (id) ON DELETE CASCADE,
    csrf_token     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX inbox_sessions_agent ON inbox_sessions (agent_id);
CREATE INDEX inbox_sessions_expiry ON inbox_sessions (expires_at);

-- Failed sign-ins, per login name and per client address: the rate limit holds across
-- processes because it lives here, not in one process's memory.
CREATE TABLE inbox_login_failures (
    id             bigserial PRIMARY KEY,
    login          text        NOT NULL,
    client         text        NOT NULL,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_login_failures_login ON inbox_login_failures (login, at);
CREATE INDEX inbox_login_failures_client ON inbox_login_failures (client, at);

-- Who answers a conversation: at most ONE agent per conversation, held by the primary key.
-- Two agents accepting at once: one INSERT wins, the other finds the row and is refused.
CREATE TABLE inbox_assignments (
    conversation_id  bigint      PRIMARY KEY REFERENCES conversations (id),
    app              text        NOT NULL,
    agent_id         bigint      NOT NULL REFERENCES inbox_agents (id),
    assigned_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_assignments_agent ON inbox_assignments (agent_id);

-- Internal notes: stored here and never enter the action path, so they cannot reach Meta.
CREATE TABLE inbox_notes (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint      NOT NULL REFERENCES conversations (id),
    agent_id         bigint      NOT NULL REFERENCES inbox_agents (id),
    text             text        NOT NULL CHECK (length(text) BETWEEN 1 AND 5000),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_notes_conversation ON inbox_notes (conversation_id, id);

-- Unread counts: the newest transcript row each agent has seen, per conversation.
CREATE TABLE inbox_reads (
    agent_id         bigint      NOT NULL REFERENCES inbox_agents (id) ON DELETE CASCADE,
    conversation_id  bigint      NOT NULL REFERENCES conversations (id),
    last_message_id  bigint      NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
);

-- A conversation page lists the customer's comments, reactions and mentions beside the
-- transcript: found by conversation without scanning the event log.
CREATE INDEX inbox_events_activity ON events (conversation_id, occurred_at)
    WHERE kind IN ('comment', 'live_comment', 'reaction', 'mention');

-- The customer's name and username as Meta's User Profile API gives them (looked up when an
-- agent opens the conversation, at most once a day; `failed` when Meta has none to give).
-- Never the picture: its CDN URL is not fetched or kept.
CREATE TABLE inbox_profiles (
    account_id     text        NOT NULL,
    customer_id    text        NOT NULL,
    name           text,
    username       text,
    failed         boolean     NOT NULL DEFAULT false,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, customer_id)
);

-- Who accepted, replied, released … and what the orchestrator decided.
CREATE TABLE inbox_audit (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint REFERENCES conversations (id),
    agent_id         bigint REFERENCES inbox_agents (id),
    action           text        NOT NULL,
    outcome          text        NOT NULL,
    detail           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    event_id         bigint,
    at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_audit_conversation ON inbox_audit (conversation_id, id);
CREATE INDEX inbox_audit_agent ON inbox_audit (agent_id, id);

-- An assignment ends by itself when the conversation goes back to the bot or to another
-- human app (pending timeout, release, human idle, Meta's take...): nobody holds a
-- conversation the inbox no longer answers.
CREATE FUNCTION inbox_end_assignment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.state = 'bot' AND OLD.state <> 'bot')
       OR (NEW.state <> 'bot'
           AND (NEW.view ->> 'human_app') IS DISTINCT FROM (OLD.view ->> 'human_app')) THEN
        DELETE FROM inbox_assignments a
        WHERE a.conversation_id = NEW.id
          AND (NEW.state = 'bot' OR a.app IS DISTINCT FROM (NEW.view ->> 'human_app'));
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER inbox_end_assignment AFTER UPDATE OF state, view ON conversations
    FOR EACH ROW EXECUTE FUNCTION inbox_end_assignment();

-- The change feed. Open inbox pages register their process here (a heartbeat); only then do
-- the triggers below NOTIFY. A notifying commit takes a database-wide lock at commit, so a
-- deployment where nobody has the inbox open pays nothing for it.
CREATE UNLOGGED TABLE inbox_watchers (
    process        text        PRIMARY KEY,
    seen_at        timestamptz NOT NULL DEFAULT now()
);

-- One NOTIFY per statement with the changed conversation ids (comma-separated), or '*'
-- when they would not fit in a notification payload.
CREATE FUNCTION inbox_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM inbox_watchers WHERE seen_at > now() - interval '1 minute') THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'conversations' THEN
        SELECT string_agg(DISTINCT id::text, ',') INTO ids FROM changed;
    ELSE
        SELECT string_agg(DISTINCT conversation_id::text, ',') INTO ids FROM changed;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM pg_notify('inbox_changes', CASE WHEN length(ids) > 7000 THEN '*' ELSE ids END);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER inbox_conversations_inserted AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION inbox_notify_changes();
CREATE TRIGGER inbox_conversations_updated AFTER UPDATE ON conversations
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION inbox_notify_changes();
CREATE TRIGGER inbox_messages_inserted AFTER INSERT ON messages
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION inbox_notify_changes();
CREATE TRIGGER inbox_messages_updated AFTER UPDATE ON messages
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION inbox_notify_changes();
CREATE TRIGGER inbox_assignments_inserted AFTER INSERT ON inbox_assignments
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION inbox_notify_changes();
CREATE TRIGGER inbox_assignments_updated AFTER UPDATE ON inbox_assignments
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION inbox_notify_changes();
CREATE TRIGGER inbox_assignments_deleted AFTER DELETE ON inbox_assignments
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION inbox_notify_changes();
CREATE TRIGGER inbox_notes_inserted AFTER INSERT ON inbox_notes
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION inbox_notify_changes();
