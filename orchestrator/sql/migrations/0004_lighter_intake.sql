-- Intake, second version (measured by `make bench`): no NOTIFY inside the transaction (the
-- service coalesces one NOTIFY per burst, see wakeup.py), and the erase step only when the
-- POST carries an unsend. A message whose unsend arrived *earlier* is erased by the worker
-- before it is processed (processing.py), off the request path.
CREATE OR REPLACE FUNCTION orchestrator_intake(
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

    -- Privacy: an unsend erases the stored content of that mid at once, and the
    -- transcript's copy too. The deletion event itself is the tombstone.
    IF 'message_deleted' = ANY (p_kinds) THEN
        WITH gone AS (
            SELECT DISTINCT t.account_id, t.mid
            FROM unnest(p_account_ids, p_mids, p_kinds) AS t(account_id, mid, kind)
            WHERE t.kind = 'message_deleted' AND t.mid IS NOT NULL
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
END;
$$;

-- Nothing reads events by conversation outside the pending queue: one index less to write.
DROP INDEX events_conversation;
