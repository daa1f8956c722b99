-- Protocol fidelity (issue 9): the disclosure guarantee (9.4) and an unsend that erases
-- every stored copy (9.7).

-- 9.4 An automated message must never reach a customer whose due disclosure was not
-- delivered. The disclosure is an outbox row of its own (or leads a bot's private reply, whose
-- payload says `discloses`; the same rules apply to it), ahead of the automated messages it
-- covers in the conversation's `meta` lane (the lane is strictly ordered, so while the
-- disclosure is open nothing behind it has been sent). When the disclosure is dead-lettered
-- — by ANY path: attempt limit, retry budget, a permanent refusal, the window closed at send
-- time, the lease reaper — the same transaction:
--   * holds the automated messages queued behind it (`payload.automated`, written by the
--     pure core for bot-authored sends and private replies) up to the next disclosure in the
--     lane (a disclosure send, or a bot's private reply the disclosure leads): they become
--     dead with the reason 'disclosure_undelivered'. Human apps' messages, reactions,
--     thread control and deliveries are not held;
--   * re-arms the disclosure: an event `disclosure_undelivered` of the conversation, which
--     the state machine turns into `disclosure_due` (so the next automated message carries
--     a fresh disclosure). It sorts before every event of the conversation still waiting
--     (or arriving late), so none is decided as if the customer had been told. Not needed when a
--     newer disclosure is queued behind (it covers what follows it).
-- A trigger, so that every path that dead-letters a row (the dispatcher's, the reaper's, a
-- manual UPDATE) holds the rows the same way; its WHEN clause is evaluated without calling
-- the function, so ordinary completions cost nothing.
--
-- Race with a worker deciding on the same conversation: the function first takes a SHARE
-- lock on the conversation row, which waits for a worker holding it (workers lock
-- conversations FOR NO KEY UPDATE while they decide) and keeps workers off it until this
-- transaction commits (they claim with SKIP LOCKED). So the held rows include everything a
-- concurrent decision queued, and the next decision sees the re-armed disclosure.
CREATE FUNCTION orchestrator_disclosure_undelivered() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    next_disclosure bigint;
    n_held integer;
    why text := left(coalesce(NEW.last_error, 'dead-lettered'), 300);
BEGIN
    IF NEW.lane <> 'meta' THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM conversations WHERE id = NEW.conversation_id FOR SHARE;

    SELECT min(o.id) INTO next_disclosure FROM outbox o
    WHERE o.conversation_id = NEW.conversation_id AND o.lane = 'meta' AND o.id > NEW.id
      AND o.status IN ('pending', 'doing')
      AND ((o.kind = 'send_message' AND o.payload->>'purpose' = 'disclosure')
           OR (o.kind = 'private_reply' AND o.payload->>'discloses' = 'true'));

    WITH held AS (
        UPDATE outbox o
        SET status = 'dead', done_at = now(), lease_token = NULL, lease_expires_at = NULL,
            last_error = 'disclosure_undelivered: the disclosure before it (outbox row '
                         || NEW.id || ') was not delivered (' || why || '); not sent'
        WHERE o.conversation_id = NEW.conversation_id AND o.lane = 'meta' AND o.id > NEW.id
          AND (next_disclosure IS NULL OR o.id < next_disclosure)
          AND o.status = 'pending' AND o.kind IN ('send_message', 'private_reply')
          AND o.payload->>'automated' = 'true' 
        RETURNING o.id
    )
    SELECT count(*) INTO n_held FROM held;

    IF next_disclosure IS NULL THEN
        INSERT INTO events (conversation_id, account_id, dedup_key, kind, source, occurred_at,
                            payload)
        SELECT c.id, c.account_id,
               'disclosure_undelivered:' || NEW.id || ':' || NEW.attempts || ':'
                   || extract(epoch FROM now())::text,
               'disclosure_undelivered', 'system',
               -- Order rule: before everything of the conversation still waiting, and before
               -- a webhook Meta delivers late with an older timestamp (none of them may be
               -- decided as if the customer had been told). Its own time is in the payload.
               'epoch'::timestamptz,
               jsonb_build_object('outbox_id', NEW.id, 'held', n_held, 'reason', why,
                                  'at', NEW.available_at)
        FROM conversations c WHERE c.id = NEW.conversation_id
        ON CONFLICT (account_id, dedup_key) DO NOTHING;
        PERFORM pg_notify('orchestrator_events', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_disclosure_undelivered
AFTER UPDATE OF status ON outbox
FOR EACH ROW
WHEN (NEW.status = 'dead' AND OLD.status <> 'dead'
      AND ((NEW.kind = 'send_message' AND NEW.payload->>'purpose' = 'disclosure')
           OR (NEW.kind = 'private_reply' AND NEW.payload->>'discloses' = 'true')))
EXECUTE FUNCTION orchestrator_disclosure_undelivered();

-- 9.7 An unsend erases every stored copy of the message. Besides the event log, the
-- transcript (0001) and the sub-apps' deliveries (0007): the raw webhook bodies kept for
-- audit and replay (`raw_deliveries`, issue 10: a flagged POST's exact bytes, or one item
-- PostgreSQL refused). A body that holds the unsent mid is redacted structurally: every JSON
-- object carrying that mid with content (text, attachments, quick reply, referral, reply_to:
-- the message itself, its edits, its standby copy) becomes `{"mid": …, "erased": true}`;
-- the rest of the POST stays for audit (no longer byte-exact, and `problem` says so). A body
-- that cannot be read as JSON (that is often why it was kept) is wiped whole: privacy first.
-- raw_deliveries holds flagged POSTs only, so the scan is small; it runs only for unsends.

-- Objects that carry `mid` in p_mids and content are replaced by a tombstone, recursively.
CREATE FUNCTION orchestrator_redact(p_doc jsonb, p_mids text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out jsonb;
BEGIN
    IF jsonb_typeof(p_doc) = 'object' THEN
        IF (p_doc->>'mid') = ANY (p_mids)
           AND p_doc ?| ARRAY['text', 'attachments', 'quick_reply', 'referral', 'reply_to'] THEN
            RETURN jsonb_build_object('mid', p_doc->>'mid', 'erased', true);
        END IF;
        SELECT coalesce(jsonb_object_agg(k, orchestrator_redact(v, p_mids)), '{}'::jsonb)
        INTO out FROM jsonb_each(p_doc) AS t(k, v);
        RETURN out;
    ELSIF jsonb_typeof(p_doc) = 'array' THEN
        SELECT coalesce(jsonb_agg(orchestrator_redact(v, p_mids) ORDER BY n), '[]'::jsonb)
        INTO out FROM jsonb_array_elements(p_doc) WITH ORDINALITY AS t(v, n);
        RETURN out;
    END IF;
    RETURN p_doc;
END;
$$;

-- The redacted bytes of a raw body, or NULL when it cannot be read as JSON (wiped).
CREATE FUNCTION orchestrator_redact_raw(p_bytes bytea, p_mids text[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_to(orchestrator_redact(convert_from(p_bytes, 'UTF8')::jsonb, p_mids)::text,
                      'UTF8');
EXCEPTION WHEN data_exception OR character_not_in_repertoire OR untranslatable_character
               OR invalid_parameter_value OR program_limit_exceeded THEN
    RETURN NULL;
END;
$$;

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
    ), raw AS (
        SELECT r.id, orchestrator_redact_raw(coalesce(r.body_bytes, convert_to(r.body, 'UTF8')),
                                             (SELECT array_agg(mid) FROM gone)) AS redacted
        FROM raw_deliveries r
        WHERE EXISTS (
            SELECT 1 FROM gone
            WHERE position(convert_to(gone.mid, 'UTF8')
                           IN coalesce(r.body_bytes, convert_to(r.body, 'UTF8'))) > 0
               OR position(convert_to(replace(gone.mid, '/', '\/'), 'UTF8')
                           IN coalesce(r.body_bytes, convert_to(r.body, 'UTF8'))) > 0)
    ), erased_raw AS (
        UPDATE raw_deliveries r
        SET body_bytes = raw.redacted,
            body = orchestrator_text_or_null(raw.redacted),
            problem = left(r.problem, 3800) || CASE WHEN raw.redacted IS NULL
                THEN '; wiped: it held a message the customer unsent and could not be redacted'
                ELSE '; redacted: a message the customer unsent was erased (no longer the exact bytes)'
            END
        FROM raw WHERE r.id = raw.id
          AND raw.redacted IS DISTINCT FROM coalesce(r.body_bytes, convert_to(r.body, 'UTF8'))
        RETURNING r.id
    )
    UPDATE messages m
    SET text = NULL, attachments = NULL, deleted_at = coalesce(m.deleted_at, now())
    FROM gone, conversations c
    WHERE m.conversation_id = c.id AND c.account_id = gone.account_id
      AND m.mid = gone.mid AND m.direction = 'in' AND m.deleted_at IS NULL;
$$;

-- 9.1 Which copy each app of ours received is ownership evidence, with any number of apps.
-- Meta sends each app one copy of a customer event: in `messaging[]` to the thread's owner
-- (or the default app while idle), in `standby[]` to the others (docs/platform.md 2.9).
-- Intake keeps the first copy and drops the others as duplicates (ON CONFLICT DO NOTHING),
-- so the copy that proves our belief wrong may be the one dropped. This table remembers the
-- copies that matter, duplicates included: a BEFORE INSERT row trigger runs for every
-- proposed row, also for one the conflict then skips.
--   * every standby copy (the app we believe in control getting one proves it is not the
--     owner; the WHEN clause costs messaging copies nothing);
--   * a messaging copy only while we believe an app outside our config (an Inbox) holds the
--     thread: then an app of ours receiving it as owner proves the Inbox let go (a release
--     sends no webhook), and Meta is asked at once (below). One primary-key probe of the
--     conversation per messaging copy.
-- UNLOGGED because it is evidence, not state: lost after a crash, the decision falls back to
-- the stored copy (and Meta refusing a send then reconciles). Rows go with their event
-- (retention deletes events; the statement trigger below deletes their copies).
CREATE UNLOGGED TABLE event_copies (
    account_id  text NOT NULL,
    dedup_key   text NOT NULL,
    app         text NOT NULL,
    source      text NOT NULL CHECK (source IN ('messaging', 'standby')),
    PRIMARY KEY (account_id, dedup_key, app)
);

CREATE FUNCTION orchestrator_note_copy() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    believed_foreign boolean := false;
BEGIN
    IF NEW.source = 'messaging' THEN
        SELECT c.owner_app LIKE 'foreign:%' INTO believed_foreign
        FROM conversations c WHERE c.id = NEW.conversation_id;
        IF NOT coalesce(believed_foreign, false) THEN
            RETURN NEW;
        END IF;
    END IF;
    INSERT INTO event_copies (account_id, dedup_key, app, source)
    VALUES (NEW.account_id, NEW.dedup_key, NEW.received_by, NEW.source)
    ON CONFLICT DO NOTHING;
    IF believed_foreign THEN
        -- The evidence is acted on when it arrives, whichever copy intake stores and whether
        -- or not the event was decided already (the copies of one event arrive
        -- independently): Meta is asked who owns the thread (a `thread_owner` outbox row,
        -- what the state machine's CheckOwner effect becomes), once per open check, with the
        -- token of the app that got the copy. Its answer moves the state.
        INSERT INTO outbox (conversation_id, account_id, kind, app, lane, payload, available_at)
        SELECT NEW.conversation_id, NEW.account_id, 'thread_owner', NEW.received_by, 'meta',
               jsonb_build_object('reason', 'messaging_while_foreign'), '-infinity'
        WHERE NOT EXISTS (
            SELECT 1 FROM outbox o
            WHERE o.conversation_id = NEW.conversation_id AND o.lane = 'meta'
              AND o.kind = 'thread_owner' AND o.status IN ('pending', 'doing'));
        PERFORM pg_notify('orchestrator_outbox', '');
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_note_copy
BEFORE INSERT ON events
FOR EACH ROW
WHEN (NEW.source IN ('messaging', 'standby') AND NEW.received_by IS NOT NULL
      AND NEW.conversation_id IS NOT NULL)
EXECUTE FUNCTION orchestrator_note_copy();

CREATE FUNCTION orchestrator_forget_copies() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_copies c USING gone
    WHERE c.account_id = gone.account_id AND c.dedup_key = gone.dedup_key
      AND gone.source IN ('messaging', 'standby');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_forget_copies
AFTER DELETE ON events
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT
EXECUTE FUNCTION orchestrator_forget_copies();
