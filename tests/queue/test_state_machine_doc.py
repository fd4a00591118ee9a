"""docs/state-machine.mmd draws every edge of the transition table, with the scripts that make it,
and nothing else: the first states (enqueue), the transitions and the expiry."""

from __future__ import annotations

from pathlib import Path

from hiveq.contract.states import ENQUEUED_AS, EXPIRED_FROM, TRANSITIONS

DIAGRAM = Path(__file__).resolve().parents[2] / "docs" / "state-machine.mmd"


def table_edges() -> list[str]:
    return [
        *(f"[*] --> {state.value}: {script}" for state, script in ENQUEUED_AS.items()),
        *(f"{frm.value} --> {to.value}: {script}" for (frm, to), script in TRANSITIONS.items()),
        *(f"{state.value} --> [*]: {script}" for state, script in EXPIRED_FROM.items()),
    ]


def test_the_state_diagram_draws_every_transition_with_its_scripts() -> None:
    lines = {line.strip() for line in DIAGRAM.read_text().splitlines()}
    assert "stateDiagram-v2" in lines
    assert [edge for edge in table_edges() if edge not in lines] == []


def test_every_edge_in_the_state_diagram_is_in_the_transition_table() -> None:
    edges = [line.strip() for line in DIAGRAM.read_text().splitlines() if "-->" in line]
    assert edges
    assert [e for e in edges if e not in table_edges()] == []
