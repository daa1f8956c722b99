-- Issue 9.1: the state machine may ask Meta who owns a thread (CheckOwner effect) when our
-- state and Meta's evidence disagree; the outbox executes it in order like any other effect.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('send_message', 'private_reply', 'sender_action',
                    'thread_control', 'deliver', 'thread_owner'));
