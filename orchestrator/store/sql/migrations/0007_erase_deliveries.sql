-- An unsend erases the content everywhere we keep it: besides the event log and the
-- transcript (0001), the copies handed to sub-apps in outbox `deliver` rows — the message
-- or edit event itself, and the escalating message carried inside a handover_requested.
-- Found by QA scenario 35 (the IBAN stayed in a delivery's payload after the unsend).
-- The deliveries are looked up by conversation (the conversations where that mid was seen,
-- found on events_mid), on a partial index of delivery rows: without it every unsend read
-- the whole outbox inside the intake transaction.
CREATE INDEX outbox_deliveries ON outbox (conversation_id) WHERE kind = 'deliver';
CREATE OR REPLACE FUNCTION orchestrator_erase(p_account_ids text[], p_mids text[]) RETURNS void
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
    ), erased_deliveries AS (
        UPDATE outbox o
        SET payload = CASE
            WHEN o.payload->'event'->>'mid' = gone.mid THEN jsonb_set(
                o.payload, '{event}',
                jsonb_build_object('type', o.payload->'event'->'type',
                                   'kind', o.payload->'event'->'kind',
                                   'mid', gone.mid, 'erased', true))
            ELSE jsonb_set(o.payload, '{event,event}',
                           jsonb_build_object('mid', gone.mid, 'erased', true))
        END
        FROM gone
        WHERE o.kind = 'deliver'
          AND o.conversation_id IN (SELECT ev.conversation_id FROM events ev
                                    WHERE ev.account_id = gone.account_id AND ev.mid = gone.mid)
          AND ((o.payload->'event'->>'mid' = gone.mid
                AND o.payload->'event'->>'kind' IN ('message', 'message_edit')
                AND NOT coalesce((o.payload->'event'->>'erased')::boolean, false))
               OR (o.payload->'event'->'event'->>'mid' = gone.mid
                   AND NOT coalesce((o.payload->'event'->'event'->>'erased')::boolean, false)))
        RETURNING o.id
    )
    UPDATE messages m
    SET text = NULL, attachments = NULL, deleted_at = coalesce(m.deleted_at, now())
    FROM gone, conversations c
    WHERE m.conversation_id = c.id AND c.account_id = gone.account_id
      AND m.mid = gone.mid AND m.direction = 'in' AND m.deleted_at IS NULL;
$$;
