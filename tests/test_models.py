"""models: ids and wire records."""

from __future__ import annotations

import re

from hiveq.models import new_task_id, new_task_ids

TASK_ID = re.compile(r"t[0-9a-f]{16}")


def test_task_ids_made_in_bulk_have_the_single_id_form_and_never_repeat() -> None:
    ids = new_task_ids(5000)
    assert len(ids) == 5000 and len(set(ids)) == 5000
    assert all(TASK_ID.fullmatch(i) for i in [*ids, new_task_id()])
    assert new_task_ids(0) == []
