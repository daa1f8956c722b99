"""The built-in agent inbox: a human sub-app served by the orchestrator (`/inbox/`).

Configure it as the handler of a `kind = "human"` app: `handler = "apps.inbox.handler:Inbox"`.
Agents act through the same ordered action path as every other app (orchestrator.api.submit).
"""
