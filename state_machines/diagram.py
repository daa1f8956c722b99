"""The conversation state machine as a Mermaid diagram and a Markdown table, both generated
from TRANSITION_TABLE so the pictures cannot drift from the code (`orchestrator diagram`)."""

from __future__ import annotations

from state_machines.conversation import ROW_LABELS, TRANSITION_TABLE, TRIGGER_NAMES
from state_machines.model import State

_GUARDS = (
    "Guards on every `action:*` row: the app must be in control (bot: the primary or the bot "
    "app owning the thread; pending_human: the targeted human app; human: the human app "
    "holding it), else `not_owner`; messages obey the 24-hour / 7-day window, else "
    "`window_closed` / `human_agent_window_closed`; a refused action changes nothing and its "
    "app gets `action_refused`."
)


def mermaid() -> str:
    """A `stateDiagram-v2` with one arrow per transition row, labelled with its trigger.
    No-ops, internal rows and refusals are left out (see `markdown_table`)."""
    lines = [
        "stateDiagram-v2",
        "    %% trigger names show U+2236 for ':' (Mermaid state labels cannot hold colons)",
        f"    [*] --> {State.BOT.value}",
    ]
    for row in TRANSITION_TABLE:
        if row.outcome == "transition":
            lines.append(f"    {row.state.value} --> {row.dest.value} : {_label(row.trigger)}")
    return "\n".join(lines) + "\n"


def _label(trigger: str) -> str:
    # The state-diagram lexer ends a label at ":" or ";" (DESCR is `":"[^:\n;]+`).
    return trigger.replace(":", "\u2236").replace(";", ",")


def markdown_table() -> str:
    """Every row of TRANSITION_TABLE, transitions, internal rows, no-ops and refusals."""
    out = [
        "| State | Trigger | Outcome | Next state | Name / code | What happens |",
        "|---|---|---|---|---|---|",
    ]
    for name in TRIGGER_NAMES:
        for row in (r for r in TRANSITION_TABLE if r.trigger == name):
            label = ROW_LABELS[(row.state, row.trigger)] or ""
            cells = (
                row.state.value,
                f"`{row.trigger}`",
                row.outcome,
                row.dest.value,
                f"`{label}`" if label else "",
                row.description,
            )
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n\n" + _GUARDS + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
