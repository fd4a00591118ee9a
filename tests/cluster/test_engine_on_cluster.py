"""The engine's contract tests, run again on a Redis Cluster whose namespace slot lives on a node
other than the one REDIS_URL names (tests/cluster/conftest.py), and the property test.

The test functions are the engine's own, imported: here `any_server` is the cluster, so each runs
through the cluster client, its redirections and its per-node script loading.
"""

from __future__ import annotations

import pytest

from tests.cluster.conftest import ClusterTarget
from tests.queue.test_cancel import (
    test_cancel_of_a_running_task_revokes_the_lease_and_refuses_its_complete,
    test_cancel_of_one_job_cancels_what_depends_on_it_and_nothing_else,
)
from tests.queue.test_claim import (
    test_blocking_fetch_wakes_on_enqueue_without_polling,
    test_claim_leases_a_job_with_token_deadline_worker_and_delivery_count,
    test_claim_takes_several_jobs_in_one_call_up_to_the_count,
    test_fifo_within_one_priority,
    test_strict_priority_across_all_agents_a_worker_serves,
)
from tests.queue.test_complete import (
    test_complete_stores_the_result_and_finishes_the_task,
    test_diamond_releases_the_join_only_after_both_branches,
    test_stale_token_complete_is_refused_and_records_nothing,
)
from tests.queue.test_enqueue import (
    test_concurrent_enqueue_calls_share_script_calls_and_each_gets_its_own_task,
    test_enqueue_places_ready_jobs_waiting_and_dependent_jobs_blocked,
    test_same_idempotency_key_returns_the_same_task,
)
from tests.queue.test_property import test_random_operation_sequences_conserve_every_job_and_run_all_live_work
from tests.support.topology import Cluster

__all__ = [
    "test_blocking_fetch_wakes_on_enqueue_without_polling",
    "test_cancel_of_a_running_task_revokes_the_lease_and_refuses_its_complete",
    "test_cancel_of_one_job_cancels_what_depends_on_it_and_nothing_else",
    "test_claim_leases_a_job_with_token_deadline_worker_and_delivery_count",
    "test_claim_takes_several_jobs_in_one_call_up_to_the_count",
    "test_complete_stores_the_result_and_finishes_the_task",
    "test_concurrent_enqueue_calls_share_script_calls_and_each_gets_its_own_task",
    "test_diamond_releases_the_join_only_after_both_branches",
    "test_enqueue_places_ready_jobs_waiting_and_dependent_jobs_blocked",
    "test_fifo_within_one_priority",
    "test_random_operation_sequences_conserve_every_job_and_run_all_live_work",
    "test_same_idempotency_key_returns_the_same_task",
    "test_stale_token_complete_is_refused_and_records_nothing",
    "test_strict_priority_across_all_agents_a_worker_serves",
]


@pytest.fixture(scope="session")
def any_server(cluster: Cluster) -> ClusterTarget:  # overrides tests/conftest.py's for this module
    return ClusterTarget(cluster.url)
