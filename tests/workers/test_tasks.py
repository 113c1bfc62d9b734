"""The node task's Celery settings that its behaviour depends on."""

from __future__ import annotations


def test_a_node_may_be_handed_back_any_number_of_times() -> None:
    # cato+'s gate hands a node back with Celery's retry; with the task's default cap (3) the
    # fourth hand-back of a busy moment failed the request with MaxRetriesExceededError
    from workers.tasks import node

    assert node.max_retries is None
    assert node.acks_late  # a hand-back's original is acked only after the copy is published
