"""Trade.advance: guarded transitions that record an event, and only legal ones."""

import pytest

from risk.models import RiskProfile
from tests.factories import paper_desk
from trading.execution.trades import open_trade
from trading.models import Trade


@pytest.fixture
def trade(db) -> Trade:
    opportunity = paper_desk()
    profile = RiskProfile.objects.get()
    return open_trade(opportunity=opportunity, mode="paper", profile=profile)


def test_advance_moves_the_state_stamps_it_and_records_the_event(trade):
    assert trade.advance(Trade.State.SUBMITTED, detail="placing")

    trade.refresh_from_db()
    assert trade.state == Trade.State.SUBMITTED and trade.submitted_at is not None
    assert [(e.from_state, e.to_state, e.detail) for e in trade.events.all()] == [
        ("pending", "submitted", "placing")
    ]


def test_only_one_of_two_writers_wins_a_transition(trade):
    stale = Trade.objects.get(pk=trade.pk)
    assert trade.advance(Trade.State.SUBMITTED)

    assert stale.advance(Trade.State.FAILED) is False
    assert Trade.objects.get(pk=trade.pk).state == Trade.State.SUBMITTED
    assert trade.events.count() == 1


def test_an_illegal_transition_is_refused(trade):
    with pytest.raises(ValueError):
        trade.advance(Trade.State.CLOSED)
