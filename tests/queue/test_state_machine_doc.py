"""docs/state-machine.mmd draws every edge of the transition table, with the script that makes it."""

from __future__ import annotations

from pathlib import Path

from hiveq.contract.states import TRANSITIONS

DIAGRAM = Path(__file__).resolve().parents[2] / "docs" / "state-machine.mmd"


def test_the_state_diagram_draws_every_transition_with_its_script() -> None:
    lines = {line.strip() for line in DIAGRAM.read_text().splitlines()}
    assert "stateDiagram-v2" in lines
    for (frm, to), script in TRANSITIONS.items():
        assert f"{frm.value} --> {to.value}: {script}" in lines, (frm, to, script)


def test_every_edge_in_the_state_diagram_is_in_the_transition_table() -> None:
    known = {f"{frm.value} --> {to.value}: {script}" for (frm, to), script in TRANSITIONS.items()}
    edges = [line.strip() for line in DIAGRAM.read_text().splitlines() if "-->" in line and "[*]" not in line]
    assert edges
    assert [e for e in edges if e not in known] == []
