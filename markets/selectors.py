"""Reads of the markets app that the engine makes once at start-up."""

import logging

from markets.models import Exchange, Listing
from markets.venues import FEED_CLASSES, VenueConfig

log = logging.getLogger(__name__)


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
            if listing.enabled
            and (not symbols or listing.market.symbol in symbols)
            and crosses_in_market(listing)
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


def crosses_in_market(listing: Listing) -> bool:
    """Whether `listing` enters its market; one quoted in another currency that the desk has not
    marked interchangeable stays out, and the log says so (USDT is not USD unless the desk says)."""
    if listing.crosses_in_market:
        return True
    log.warning(
        "%s %s quotes in %s, not %s's %s, and is not marked interchangeable: left out of it",
        listing.exchange.slug,
        listing.venue_symbol,
        listing.foreign_quote,
        listing.market.symbol,
        listing.market.quote,
    )
    return False
