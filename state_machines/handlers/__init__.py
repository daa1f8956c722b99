"""The handlers the transition table names, one module per trigger family.

A handler takes the `Run` of one decision, reads the view, the trigger and the policy from
it, and records effects, notes, view changes or a refusal on it; it performs nothing. The
steps several handlers share live beside this package (`control`, `sending`, `moves`).
"""
