-- When the customer last edited a message. Meta often sends an edit without its text (only
-- mid and num_edit): the transcript keeps the stored text and this column records the edit.
ALTER TABLE messages ADD COLUMN edited_at timestamptz;
