-- Named queries of the agent inbox (tables in orchestrator/store/sql/migrations/0004_inbox.sql).

-- name: agent_by_login
SELECT id, login, display_name, role, password_hash, locale, disabled_at
FROM inbox_agents WHERE login = $1;

-- name: agent_insert
INSERT INTO inbox_agents (login, display_name, role, password_hash)
VALUES ($1, $2, $3, $4)
RETURNING id;

-- name: agent_set_password
-- Also re-enables a disabled agent (sandbox demo agent, `agents add --reset`); a NULL role
-- keeps the agent's role.
UPDATE inbox_agents SET password_hash = $2, role = coalesce($3, role), disabled_at = NULL
WHERE login = $1
RETURNING id;

-- name: agent_list
SELECT id, login, display_name, role, created_at, disabled_at FROM inbox_agents ORDER BY login;

-- name: agent_disable
-- A disabled agent is signed out at once and holds no conversation any more.
WITH a AS (
    UPDATE inbox_agents SET disabled_at = coalesce(disabled_at, now()) WHERE login = $1
    RETURNING id
), s AS (
    DELETE FROM inbox_sessions WHERE agent_id IN (SELECT id FROM a)
), r AS (
    DELETE FROM inbox_assignments WHERE agent_id IN (SELECT id FROM a)
)
SELECT id FROM a;

-- name: agents_active
SELECT id, login, display_name, role FROM inbox_agents WHERE disabled_at IS NULL ORDER BY display_name;

-- name: session_insert
INSERT INTO inbox_sessions (token_hash, agent_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4);

-- name: session_lookup
SELECT s.csrf_token, a.id, a.login, a.display_name, a.role, a.locale
FROM inbox_sessions s JOIN inbox_agents a ON a.id = s.agent_id
WHERE s.token_hash = $1 AND s.expires_at > now() AND a.disabled_at IS NULL;

-- name: session_delete
DELETE FROM inbox_sessions WHERE token_hash = $1;

-- name: sessions_purge
DELETE FROM inbox_sessions WHERE expires_at <= now();

-- name: login_failures_recent
SELECT count(*) FILTER (WHERE login = $1) AS by_login,
       count(*) FILTER (WHERE client = $2) AS by_client
FROM inbox_login_failures
WHERE (login = $1 OR client = $2) AND at > now() - make_interval(secs => $3);

-- name: login_failure_insert
INSERT INTO inbox_login_failures (login, client) VALUES ($1, $2);

-- name: login_failures_forget
-- A successful sign-in clears that name's failures; old rows are dropped on the way.
DELETE FROM inbox_login_failures WHERE login = $1 OR at < now() - interval '1 day';

-- name: queue
-- Every conversation an agent may look at, with who holds it, the last message and how many
-- customer messages this agent has not read. The newest $6 are picked first (waiting ones and
-- this agent's always), and only those get the per-conversation lookups. Sections and their
-- order are made in Python.
WITH top AS (
    SELECT c.id, c.account_id, c.customer_id, c.state, c.owner_app, c.view, c.updated_at,
           a.agent_id, ag.display_name AS agent_name, ag.login AS agent_login
    FROM conversations c
    LEFT JOIN inbox_assignments a ON a.conversation_id = c.id
    LEFT JOIN inbox_agents ag ON ag.id = a.agent_id
    WHERE ($2::text IS NULL OR c.account_id = $2)
      AND ($3::text IS NULL OR c.state = $3)
      AND ($4::text IS NULL
           OR ($4 = '@me' AND a.agent_id = $1)
           OR ($4 = '@nobody' AND a.agent_id IS NULL)
           OR ag.login = $4)
      AND ($5::text IS NULL
           OR c.customer_id ILIKE $5
           OR EXISTS (SELECT 1 FROM messages s WHERE s.conversation_id = c.id AND s.text ILIKE $5))
    ORDER BY (c.state = 'pending_human') DESC, (a.agent_id IS NOT DISTINCT FROM $1) DESC,
             c.updated_at DESC, c.id DESC
    LIMIT $6
)
SELECT top.*, p.name AS profile_name, p.username AS profile_username,
       lm.text AS last_text, lm.direction AS last_direction, lm.author AS last_author,
       lm.deleted_at AS last_deleted, lm.attachments AS last_attachments,
       (SELECT count(*) FROM messages m
        WHERE m.conversation_id = top.id AND m.direction = 'in'
          AND m.id > coalesce(r.last_message_id, 0)) AS unread
FROM top
LEFT JOIN inbox_reads r ON r.conversation_id = top.id AND r.agent_id = $1
LEFT JOIN inbox_profiles p ON p.account_id = top.account_id AND p.customer_id = top.customer_id
LEFT JOIN LATERAL (
    SELECT text, direction, author, deleted_at, attachments FROM messages m
    WHERE m.conversation_id = top.id ORDER BY m.created_at DESC, m.id DESC LIMIT 1
) lm ON true
ORDER BY top.updated_at DESC, top.id DESC;

-- name: conversation
SELECT c.id, c.account_id, c.customer_id, c.state, c.owner_app, c.view, c.updated_at,
       a.agent_id, a.app AS assigned_app, ag.display_name AS agent_name, ag.login AS agent_login,
       p.name AS profile_name, p.username AS profile_username,
       p.fetched_at > now() - interval '1 day' AS profile_fresh
FROM conversations c
LEFT JOIN inbox_assignments a ON a.conversation_id = c.id
LEFT JOIN inbox_agents ag ON ag.id = a.agent_id
LEFT JOIN inbox_profiles p ON p.account_id = c.account_id AND p.customer_id = c.customer_id
WHERE c.id = $1;

-- name: transcript
-- Who said what: an outgoing message sent for an inbox action names the agent (kept in the
-- action event); an incoming one brings its raw item (story replies, referrals).
SELECT m.id, m.mid, m.direction, m.author, m.purpose, m.text, m.attachments, m.created_at,
       m.deleted_at, ev.payload -> 'agent' ->> 'name' AS agent_name, inev.payload AS raw
FROM messages m
JOIN conversations c ON c.id = m.conversation_id
LEFT JOIN outbox o ON o.id = m.outbox_id
LEFT JOIN events ev ON ev.id = o.event_id AND ev.kind = 'action'
LEFT JOIN LATERAL (
    SELECT e.payload FROM events e
    WHERE m.direction = 'in' AND m.mid IS NOT NULL AND e.account_id = c.account_id
      AND e.mid = m.mid AND e.kind = 'message'
    LIMIT 1
) inev ON true
WHERE m.conversation_id = $1
ORDER BY m.created_at, m.id
LIMIT 1000;

-- name: activity
-- The customer's other doings that are not transcript rows: comments, reactions, mentions.
SELECT id, kind, source, occurred_at, payload, erased FROM events
WHERE conversation_id = $1 AND kind IN ('comment', 'live_comment', 'reaction', 'mention')
ORDER BY occurred_at, id
LIMIT 500;

-- name: mark_read
INSERT INTO inbox_reads (agent_id, conversation_id, last_message_id)
SELECT $1, $2, coalesce(max(id), 0) FROM messages WHERE conversation_id = $2
ON CONFLICT (agent_id, conversation_id)
DO UPDATE SET last_message_id = greatest(inbox_reads.last_message_id, EXCLUDED.last_message_id);

-- name: assignment_take
-- The database decides who answers: the first INSERT wins, everyone else gets nothing back.
INSERT INTO inbox_assignments (conversation_id, app, agent_id) VALUES ($1, $2, $3)
ON CONFLICT (conversation_id) DO NOTHING
RETURNING agent_id;

-- name: assignment_holder
SELECT a.agent_id, ag.display_name FROM inbox_assignments a
JOIN inbox_agents ag ON ag.id = a.agent_id WHERE a.conversation_id = $1;

-- name: assignment_move
-- Transfer to another agent; only from the holder (or, with $4, from whoever holds it).
UPDATE inbox_assignments SET agent_id = $2, assigned_at = now()
WHERE conversation_id = $1 AND (agent_id = $3 OR $4)
RETURNING agent_id;

-- name: assignment_drop
DELETE FROM inbox_assignments WHERE conversation_id = $1 AND agent_id = $2;

-- name: note_insert
-- Times come from the service's clock (the sandbox's may be simulated), like the transcript's.
INSERT INTO inbox_notes (conversation_id, agent_id, text, created_at) VALUES ($1, $2, $3, $4)
RETURNING id;

-- name: notes
SELECT n.id, n.text, n.created_at, ag.display_name AS agent_name
FROM inbox_notes n JOIN inbox_agents ag ON ag.id = n.agent_id
WHERE n.conversation_id = $1 ORDER BY n.id;

-- name: audit_insert
INSERT INTO inbox_audit (conversation_id, agent_id, action, outcome, detail, event_id, at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: audit_for_conversation
SELECT au.action, au.outcome, au.detail, au.at, ag.display_name AS agent_name
FROM inbox_audit au LEFT JOIN inbox_agents ag ON ag.id = au.agent_id
WHERE au.conversation_id = $1 ORDER BY au.id DESC LIMIT 200;

-- name: audit_search
SELECT au.conversation_id, au.action, au.outcome, au.detail, au.at,
       ag.display_name AS agent_name, ag.login AS agent_login
FROM inbox_audit au LEFT JOIN inbox_agents ag ON ag.id = au.agent_id
WHERE ($1::text IS NULL OR ag.login = $1)
  AND ($2::bigint IS NULL OR au.conversation_id = $2)
  AND ($3::text IS NULL OR au.action = $3)
ORDER BY au.id DESC LIMIT $4;

-- name: watcher_beat
INSERT INTO inbox_watchers (process, seen_at) VALUES ($1, now())
ON CONFLICT (process) DO UPDATE SET seen_at = now();

-- name: watcher_gone
DELETE FROM inbox_watchers WHERE process = $1;

-- name: notify_change
SELECT pg_notify('inbox_changes', $1);

-- name: profile_store
INSERT INTO inbox_profiles (account_id, customer_id, name, username, failed)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (account_id, customer_id)
DO UPDATE SET name = EXCLUDED.name, username = EXCLUDED.username, failed = EXCLUDED.failed,
              fetched_at = now();
