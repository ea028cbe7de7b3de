"""Order.objects.ack_latency: each venue's p50 and p99 over its newest orders, in the database."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ExchangeFactory, timed_orders
from trading.models import AckLatency, Order

pytestmark = pytest.mark.django_db


def test_p50_and_p99_are_nearest_rank_over_the_newest_orders_of_each_venue():
    binance, kraken = ExchangeFactory(slug="binance"), ExchangeFactory(slug="kraken")
    timed_orders(binance, [float(ms) for ms in range(1, 201)])  # 1..200 ms, oldest first
    timed_orders(kraken, [30.0, 10.0, 20.0])

    figures = Order.objects.ack_latency(mode="live", window=100)

    # The newest 100 of Binance's are 101..200: the 50th of them and the 99th.
    assert figures[binance.pk] == AckLatency(orders=100, p50_ms=150.0, p99_ms=199.0)
    # Fewer orders than the window: all of them; with 3, the 2nd and the 3rd.
    assert figures[kraken.pk] == AckLatency(orders=3, p50_ms=20.0, p99_ms=30.0)


def test_one_slow_order_is_the_p99_of_a_small_window_until_newer_ones_push_it_out():
    binance = ExchangeFactory(slug="binance")
    start = timezone.now() - timedelta(hours=1)
    timed_orders(binance, [40.0, 2500.0, 40.0], start=start)

    assert Order.objects.ack_latency(mode="live", window=3)[binance.pk].p99_ms == 2500.0

    timed_orders(binance, [50.0, 60.0], start=start + timedelta(minutes=1))

    assert Order.objects.ack_latency(mode="live", window=3)[binance.pk] == AckLatency(
        orders=3, p50_ms=50.0, p99_ms=60.0
    )


def test_only_the_modes_timed_orders_count_and_a_venue_without_any_is_left_out():
    binance, quiet = ExchangeFactory(slug="binance"), ExchangeFactory(slug="quiet")
    timed_orders(binance, [900.0, 800.0], mode="paper")
    timed_orders(binance, [None, 12.0])  # an order never sent has no time
    timed_orders(quiet, [5.0], mode="paper")

    live = Order.objects.ack_latency(mode="live", window=10)

    assert live == {binance.pk: AckLatency(orders=1, p50_ms=12.0, p99_ms=12.0)}
    assert Order.objects.ack_latency(mode="paper", window=10)[binance.pk].p99_ms == 900.0


def test_since_counts_only_a_venues_orders_after_it_and_leaves_the_others_whole():
    binance, kraken = ExchangeFactory(slug="binance"), ExchangeFactory(slug="kraken")
    start = timezone.now() - timedelta(hours=1)
    timed_orders(binance, [2500.0, 2400.0, 40.0, 50.0], start=start)  # the slow ones paused it
    timed_orders(kraken, [700.0, 30.0], start=start)
    resumed = start + timedelta(seconds=1, milliseconds=500)  # after the first two

    figures = Order.objects.ack_latency(mode="live", window=10, since={binance.pk: resumed})

    assert figures[binance.pk] == AckLatency(orders=2, p50_ms=40.0, p99_ms=50.0)
    assert figures[kraken.pk] == AckLatency(orders=2, p50_ms=30.0, p99_ms=700.0)
    everything = Order.objects.ack_latency(mode="live", window=10, since={})
    assert everything[binance.pk].orders == 4
