"""Reads of the markets app that the engine makes once at start-up."""

from markets.models import Exchange
from markets.venues import FEED_CLASSES, VenueConfig


def load_venues(
    exchanges: list[str] | None = None, symbols: list[str] | None = None
) -> list[VenueConfig]:
    """Read the enabled venues and their listings (a start-up read, never on the hot path)."""
    venues = []
    query = Exchange.objects.filter(enabled=True, slug__in=FEED_CLASSES).prefetch_related(
        "listings__market"
    )
    if exchanges:
        query = query.filter(slug__in=exchanges)
    for exchange in query:
        listings = [
            listing
            for listing in exchange.listings.all()
            if listing.enabled and (not symbols or listing.market.symbol in symbols)
        ]
        if not listings:
            continue
        venues.append(
            VenueConfig(
                slug=exchange.slug,
                ws_url=exchange.effective_ws_url(),
                rest_url=exchange.effective_rest_url(),
                taker_fee=exchange.taker_fee,
                symbols={item.market.symbol: item.venue_symbol for item in listings},
                lots={item.market.symbol: item.lot_size for item in listings},
                exchange_id=exchange.id,
            )
        )
    return venues
