"""An alert's delivery state from the tallies of its first notification's deliveries."""

from __future__ import annotations

import pytest

from cartwatch.streams.storage.delivery_state import delivery_status


@pytest.mark.parametrize(
    ("due", "delivered", "failing", "status"),
    [
        (0, 0, 0, "pending"),  # not taken up by a dispatcher, or no sink for its severity
        (2, 0, 0, "pending"),  # waiting for the first attempt, or being delivered
        (2, 1, 0, "pending"),  # one sink took it, the other has not tried yet
        (1, 1, 0, "delivered"),
        (2, 2, 0, "delivered"),
        (1, 0, 1, "failed"),  # the last attempt failed; retried with backoff
        (2, 1, 1, "failed"),  # one sink took it, the other refused: not every one has it
    ],
)
def test_an_alert_is_delivered_only_when_every_due_delivery_is(due, delivered, failing, status):
    assert delivery_status(due, delivered, failing) == status
