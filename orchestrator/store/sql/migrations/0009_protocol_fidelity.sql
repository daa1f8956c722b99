-- Protocol fidelity (issue 9): the disclosure guarantee (9.4) and an unsend that erases
-- every stored copy (9.7).

-- 9.4 An automated message must never reach a customer whose due disclosure was not
-- delivered. The disclosure is an outbox row of its own, ahead of the automated messages it
-- covers in the conversation's `meta` lane (the lane is strictly ordered, so while the
-- disclosure is open nothing behind it has been sent). When the disclosure is dead-lettered
-- — by ANY path: attempt limit, retry budget, a permanent refusal, the window closed at send
-- time, the lease reaper — the same transaction:
--   * holds the automated messages queued behind it (`payload.automated`, written by the
--     pure core for bot-authored sends) up to the next disclosure in the lane: they become
--     dead with the reason 'disclosure_undelivered'. Human apps' messages, reactions,
--     thread control and deliveries are not held;
--   * re-arms the disclosure: an event `disclosure_undelivered` of the conversation, which
--     the state machine turns into `disclosure_due` (so the next automated message carries
--     a fresh disclosure). It sorts before every event of the conversation still waiting,
--     so nothing waiting is decided as if the customer had been told. Not needed when a
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
    first_pending timestamptz;
    why text := left(coalesce(NEW.last_error, 'dead-lettered'), 300);
BEGIN
    IF NEW.lane <> 'meta' THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM conversations WHERE id = NEW.conversation_id FOR SHARE;

    SELECT min(o.id) INTO next_disclosure FROM outbox o
    WHERE o.conversation_id = NEW.conversation_id AND o.lane = 'meta' AND o.id > NEW.id
      AND o.status IN ('pending', 'doing') AND o.kind = 'send_message'
      AND o.payload->>'purpose' = 'disclosure';

    WITH held AS (
        UPDATE outbox o
        SET status = 'dead', done_at = now(), lease_token = NULL, lease_expires_at = NULL,
            last_error = 'disclosure_undelivered: the disclosure before it (outbox row '
                         || NEW.id || ') was not delivered (' || why || '); not sent'
        WHERE o.conversation_id = NEW.conversation_id AND o.lane = 'meta' AND o.id > NEW.id
          AND (next_disclosure IS NULL OR o.id < next_disclosure)
          AND o.status = 'pending' AND o.kind = 'send_message'
          AND coalesce((o.payload->>'automated')::boolean, false)
        RETURNING o.id
    )
    SELECT count(*) INTO n_held FROM held;

    IF next_disclosure IS NULL THEN
        SELECT min(e.occurred_at) INTO first_pending FROM events e
        WHERE e.conversation_id = NEW.conversation_id AND e.status = 'pending';
        INSERT INTO events (conversation_id, account_id, dedup_key, kind, source, occurred_at,
                            payload)
        SELECT c.id, c.account_id,
               'disclosure_undelivered:' || NEW.id || ':' || NEW.attempts || ':'
                   || extract(epoch FROM now())::text,
               'disclosure_undelivered', 'system',
               -- Before everything of the conversation still waiting (see above).
               least(NEW.available_at, first_pending - interval '1 microsecond'),
               jsonb_build_object('outbox_id', NEW.id, 'held', n_held, 'reason', why)
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
WHEN (NEW.status = 'dead' AND OLD.status <> 'dead' AND NEW.kind = 'send_message'
      AND NEW.payload->>'purpose' = 'disclosure')
EXECUTE FUNCTION orchestrator_disclosure_undelivered();
