-- Intake that content cannot poison (issue 10). Everything Meta sends and we acknowledge is
-- stored somewhere queryable, and one bad item never drops or blocks its batch-mates:
--
-- * raw_deliveries keeps the exact bytes (`body_bytes`): non-JSON bodies, bodies whose values
--   had to be escaped, odd shapes. `body` (text) is filled only when the bytes are valid
--   UTF-8 without NUL, so old queries keep working; `item` names the one item of a POST that
--   is kept here instead of in `events` (null: the whole body).
-- * events.intake_problem flags an event whose stored form differs from what was sent
--   (escaped strings, hashed over-long ids); the raw bytes of that POST are in raw_deliveries.
-- * orchestrator_intake: one statement, one round trip, as before. The whole batch is tried at
--   once inside ONE subtransaction; only if PostgreSQL refuses some content (a data error,
--   an index row too large, a nesting limit) is the batch replayed item by item, each in its
--   own subtransaction, and a refused item is kept in raw_deliveries with the SQLSTATE. The
--   happy path costs one savepoint, never a round trip per item.

ALTER TABLE raw_deliveries ALTER COLUMN body DROP NOT NULL;
ALTER TABLE raw_deliveries ADD COLUMN body_bytes bytea;
ALTER TABLE raw_deliveries ADD COLUMN item integer;
ALTER TABLE events ADD COLUMN intake_problem text;

-- Bytes as text when PostgreSQL can hold them as text (valid UTF-8, no NUL), else NULL.
CREATE FUNCTION orchestrator_text_or_null(p_bytes bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_from(p_bytes, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character
               OR invalid_parameter_value OR data_exception THEN
    RETURN NULL;
END;
$$;

-- The full intake: items, their per-item flags, and the raw bytes of a flagged POST.
-- Returns one row per stored event (event_id, kind, item ordinal) and one row per item kept
-- in raw_deliveries instead (event_id NULL, kind 'quarantined'); a duplicate returns nothing.
CREATE FUNCTION orchestrator_intake(
    p_received_by text,
    p_account_ids text[], p_customer_ids text[], p_dedup_keys text[], p_kinds text[],
    p_sources text[], p_mids text[], p_occurred timestamptz[], p_payloads text[],
    p_problems text[], p_raw_bytes bytea, p_raw_problem text
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
            RETURNING e.id, e.kind
        )
        SELECT array_agg(ins.id ORDER BY ins.id), array_agg(ins.kind ORDER BY ins.id)
        INTO ids, kinds FROM ins;
        -- Rows come back in insertion order (ids ascending), the item numbers are not needed
        -- on the happy path.
        RETURN QUERY SELECT u.id, u.kind, NULL::integer
                     FROM unnest(ids, kinds) AS u(id, kind) WHERE u.id IS NOT NULL;
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
                        'item ' || i || ' (' || coalesce(p_kinds[i], '?')
                            || ') refused by PostgreSQL: SQLSTATE ' || SQLSTATE,
                        i);
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

-- The original signature (queries.sql `intake`: actions, internal rows) now runs the isolated
-- intake above; its raw body is text, stored as bytes and text.
CREATE OR REPLACE FUNCTION orchestrator_intake(
    p_received_by text,
    p_account_ids text[], p_customer_ids text[], p_dedup_keys text[], p_kinds text[],
    p_sources text[], p_mids text[], p_occurred timestamptz[], p_payloads text[],
    p_raw_body text, p_raw_problem text
) RETURNS TABLE (event_id bigint, event_kind text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.event_id, r.event_kind
    FROM orchestrator_intake(p_received_by, p_account_ids, p_customer_ids, p_dedup_keys,
                             p_kinds, p_sources, p_mids, p_occurred, p_payloads,
                             NULL::text[], convert_to(p_raw_body, 'UTF8'), p_raw_problem) AS r
    WHERE r.event_id IS NOT NULL;
$$;

-- REST API read access (issue 10.2): an app reads the conversations it owns, owned, or was
-- the human app of. Ownership changes are rare, so a trigger on those changes records the
-- readers; the hot paths (intake, the outbox) are untouched.
CREATE TABLE conversation_readers (
    conversation_id  bigint NOT NULL REFERENCES conversations (id),
    app              text   NOT NULL,
    since            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, app)
);
CREATE INDEX conversation_readers_app ON conversation_readers (app, conversation_id);

CREATE FUNCTION orchestrator_note_readers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversation_readers (conversation_id, app)
    SELECT NEW.id, a FROM (VALUES (NEW.owner_app), (NEW.view ->> 'human_app')) AS t(a)
    WHERE a IS NOT NULL AND a NOT LIKE 'foreign:%'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

-- The WHEN clauses are evaluated without calling the function: the worker's per-event
-- conversation update pays for the function only when the owner or human app changes.
CREATE TRIGGER conversations_readers_insert
AFTER INSERT ON conversations
FOR EACH ROW
WHEN (NEW.owner_app IS NOT NULL OR (NEW.view ->> 'human_app') IS NOT NULL)
EXECUTE FUNCTION orchestrator_note_readers();

CREATE TRIGGER conversations_readers_update
AFTER UPDATE OF owner_app, view ON conversations
FOR EACH ROW
WHEN ((NEW.owner_app IS NOT NULL AND NEW.owner_app IS DISTINCT FROM OLD.owner_app)
      OR ((NEW.view ->> 'human_app') IS NOT NULL
          AND (NEW.view ->> 'human_app') IS DISTINCT FROM (OLD.view ->> 'human_app')))
EXECUTE FUNCTION orchestrator_note_readers();

INSERT INTO conversation_readers (conversation_id, app)
SELECT c.id, a FROM conversations c,
     LATERAL (VALUES (c.owner_app), (c.view ->> 'human_app')) AS t(a)
WHERE a IS NOT NULL AND a NOT LIKE 'foreign:%'
ON CONFLICT DO NOTHING;

-- The transcript's unique (conversation_id, mid) index has the same ~2.7 KB row limit: a mid
-- that long (hostile or broken input; intake stores it hashed in events) would make the
-- worker fail on that message forever and stall its conversation. Such mids are stored in
-- the same hashed form intake uses (`sha256:<hex of the UTF-8 bytes>`), so erasing by mid
-- keeps matching. The WHEN clause is evaluated without calling the function: normal mids
-- cost nothing.
CREATE FUNCTION orchestrator_bound_mid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.mid := 'sha256:' || encode(sha256(convert_to(NEW.mid, 'UTF8')), 'hex');
    RETURN NEW;
END;
$$;

CREATE TRIGGER messages_bound_mid
BEFORE INSERT OR UPDATE OF mid ON messages
FOR EACH ROW
WHEN (octet_length(NEW.mid) > 1000)
EXECUTE FUNCTION orchestrator_bound_mid();
