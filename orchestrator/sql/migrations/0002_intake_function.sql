-- Webhook intake in ONE round trip: the request path is signature check, parse, one call.
-- A function call is a single statement, hence atomic: every item of the POST (and the raw
-- body when flagged) is committed together or not at all. Each statement inside sees a new
-- snapshot (READ COMMITTED, VOLATILE), so a conversation created concurrently by another
-- intake is found by the events insert.
CREATE FUNCTION orchestrator_intake(
    p_received_by text,
    p_account_ids text[], p_customer_ids text[], p_dedup_keys text[], p_kinds text[],
    p_sources text[], p_mids text[], p_occurred timestamptz[], p_payloads text[],
    p_raw_body text, p_raw_problem text
) RETURNS TABLE (event_id bigint, event_kind text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    erasable text[];
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

    -- Privacy: an unsend erases the stored content of that mid at once, whichever of the
    -- message and the deletion arrived first. The deletion event itself is the tombstone.
    SELECT array_agg(m) INTO erasable
    FROM unnest(p_mids, p_kinds) AS t(m, k)
    WHERE m IS NOT NULL AND k IN ('message', 'message_echo', 'message_deleted', 'message_edit');
    IF erasable IS NOT NULL THEN
        WITH gone AS (
            SELECT DISTINCT d.account_id, d.mid FROM events d
            WHERE d.kind = 'message_deleted' AND d.mid = ANY (erasable)
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
    END IF;

    PERFORM pg_notify('orchestrator_events', '');
END;
$$;
