"""models: ids and wire records."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from hiveq.api.errors import from_pydantic
from hiveq.contract.models import SubtaskSpec
from hiveq.contract.protocol import new_task_ids

TASK_ID = re.compile(r"t[0-9a-f]{16}")


def test_task_ids_made_in_bulk_have_the_task_id_form_and_never_repeat() -> None:
    ids = new_task_ids(5000)
    assert len(ids) == 5000 and len(set(ids)) == 5000
    assert all(TASK_ID.fullmatch(i) for i in [*ids, *new_task_ids(1)])
    assert new_task_ids(0) == []


def test_subtask_ids_and_agent_names_outside_their_patterns_are_refused_in_plain_words() -> None:
    for bad, field, words in [
        ({"id": "has space", "agent": "a"}, "id", "1-64 characters of A-Z"),
        ({"id": "x" * 65, "agent": "a"}, "id", "1-64 characters of A-Z"),
        ({"id": "ok", "agent": "Upper"}, "agent", "starting with a letter or digit"),
        ({"id": "ok", "agent": "trailing\n"}, "agent", "starting with a letter or digit"),
    ]:
        with pytest.raises(ValidationError) as caught:
            SubtaskSpec.model_validate(bad)
        err = from_pydantic(caught.value.errors())
        assert err.field == field and words in str(err), (bad, str(err))
