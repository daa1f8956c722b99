-- Named queries of protocol fidelity (issue 9; migration 0009). Kept apart from the
-- engine's hot-path queries (queries.sql).

-- name: disclosure_holds
-- Issue 9.4: disclosures dead-lettered, and the automated messages held (not sent) because
-- the disclosure before them was not delivered.
SELECT count(*) FILTER (WHERE (kind = 'send_message' AND payload->>'purpose' = 'disclosure')
                          OR (kind = 'private_reply' AND payload->>'discloses' = 'true'))
           AS disclosures,
       count(*) FILTER (WHERE last_error LIKE 'disclosure_undelivered:%') AS held
FROM outbox WHERE status = 'dead';

-- name: mid_unsent
-- Whether the customer unsent this message (a reaction to it is recorded, not forwarded).
SELECT EXISTS (SELECT 1 FROM events WHERE account_id = $1 AND mid = $2
               AND kind = 'message_deleted') AS unsent;

-- name: event_copies
-- Issue 9.1: the copies of this event our apps received (duplicates included) as parallel
-- arrays of app and source: every standby copy, and messaging copies while an Inbox was
-- believed to hold the thread (migration 0009); and whether a control move we decided
-- (pass, take, release) is still waiting in the conversation's `meta` lane (until it is
-- performed, the app it names gets standby copies: expected, not evidence).
SELECT coalesce(array_agg(c.app ORDER BY c.app) FILTER (WHERE c.app IS NOT NULL), '{}') AS apps,
       coalesce(array_agg(c.source ORDER BY c.app) FILTER (WHERE c.app IS NOT NULL), '{}')
           AS sources,
       EXISTS (SELECT 1 FROM outbox o
               WHERE o.conversation_id = e.conversation_id AND o.lane = 'meta'
                 AND o.status IN ('pending', 'doing') AND o.kind = 'thread_control'
                 AND o.payload->>'action' IN ('pass', 'take', 'release')) AS control_pending
FROM events e LEFT JOIN event_copies c
     ON c.account_id = e.account_id AND c.dedup_key = e.dedup_key
WHERE e.id = $1
GROUP BY e.id, e.conversation_id;
