-- Webhook intake queries (the hardened intake of migrations/0003). Loaded with queries.sql.

-- name: intake_items
-- One round trip for a whole webhook POST: items with their flags, plus the raw bytes when
-- the POST is flagged. Rows: stored events, and items quarantined in raw_deliveries. $13
-- numbers the items within their own POSTs when several POSTs share the call (GroupCommit).
SELECT event_id, event_kind, item
FROM orchestrator_intake($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::integer[]);

-- name: intake_raw_only
-- The last resort when the items themselves could not be stored for a reason that is not
-- the database being unavailable: keep the exact bytes, flagged, so the POST can be
-- acknowledged and nothing is lost.
INSERT INTO raw_deliveries (app, body, body_bytes, problem)
VALUES ($1, orchestrator_text_or_null($2), $2, $3)
RETURNING id;

