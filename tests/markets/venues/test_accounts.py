"""What each live venue says about the desk's account, asked of its simulated venue over
loopback: the fee tier (`fetch_fees`) and the balances (`fetch_balances`), or a clear error."""

import time
from decimal import Decimal

import pytest
import pytest_asyncio

from markets.simulator.demo import demo_key, demo_passphrase
from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from markets.venues.live import ORDER_CLASSES
from markets.venues.orders import FeeTier, OrderRequest, VenueError

D = Decimal
SYMBOLS = {
    "coinbase": "BTC-USDT",
    "kraken": "BTC/USDT",
    "binance": "BTCUSDT",
    "kucoin": "BTC-USDT",
}
FUNDING = {"BTC": D(2), "USDT": D(100_000)}
STILL = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)
VENUES = list(SYMBOLS)


@pytest_asyncio.fixture
async def simulator():
    listings = {slug: SimListing(symbol, D("0.1"), D("0.0001")) for slug, symbol in SYMBOLS.items()}
    markets = {"BTC-USDT": MarketSpec(mid=D(100), size=D(1), listings=listings)}
    async with VenueSimulator(markets=markets, profiles=dict.fromkeys(SYMBOLS, STILL)) as sim:
        for slug, venue in sim.venues.items():
            venue.open_account(*demo_key(slug), FUNDING, demo_passphrase(slug))
            venue.set_book(SYMBOLS[slug], bids=[(D(99), D(1))], asks=[(D(100), D(1))])
        yield sim


def live(simulator, slug: str, *, key: tuple[str, str] | None = None, url: str = ""):
    api_key, secret = key or demo_key(slug)
    url = url or simulator.urls[f"{slug}_rest"]
    extra = {"passphrase": demo_passphrase(slug)} if demo_passphrase(slug) else {}
    return ORDER_CLASSES[slug](
        api_key=api_key, secret=secret, api_url=url, timeout_ms=2000, **extra
    )


def plain(held: dict[str, Decimal]) -> dict[str, Decimal]:
    return {asset: amount.normalize() for asset, amount in held.items() if amount}


@pytest.mark.asyncio
@pytest.mark.parametrize("slug", VENUES)
async def test_each_venue_states_the_accounts_fee_tier_exactly(simulator, slug):
    venue = simulator.venues[slug]
    venue.taker_fee_bps, venue.maker_fee_bps = D("23.5"), D("11.25")

    tier = await live(simulator, slug).fetch_fees([SYMBOLS[slug]])

    assert tier == FeeTier(taker_bps=D("23.5"), maker_bps=D("11.25"))


@pytest.mark.asyncio
@pytest.mark.parametrize("slug", VENUES)
async def test_each_venue_states_what_the_account_holds_and_a_fill_moves_it(simulator, slug):
    venue = live(simulator, slug)
    before = await venue.fetch_balances()
    report = await venue.place_ioc(
        OrderRequest(
            client_order_id=f"arb-1-{int(time.time() * 1000):x}-buy",  # created now
            venue=slug,
            market="BTC-USDT",
            venue_symbol=SYMBOLS[slug],
            side="buy",
            amount=D("0.5"),
            limit_price=D(100),
            taker_fee_bps=simulator.venues[slug].taker_fee_bps,
        )
    )

    after = await venue.fetch_balances()

    assert plain(before) == plain(FUNDING)
    assert report.filled == D("0.5")
    assert plain(after) == plain(simulator.venues[slug].holdings(demo_key(slug)[0]))
    assert after["BTC"] == D("2.5")
    fee = D(50) * simulator.venues[slug].taker_fee_bps / 10_000
    assert after["USDT"] == D(100_000) - D(50) - fee


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("slug", "words"),
    [
        ("coinbase", "UNAUTHORIZED"),
        ("kraken", "EAPI:Invalid key"),
        ("binance", "Invalid API-key, IP, or permissions for action."),
        ("kucoin", "KC-API-KEY not exists"),
    ],
)
async def test_a_key_the_venue_does_not_know_is_a_venue_error_in_its_words(simulator, slug, words):
    stranger = live(simulator, slug, key=demo_key("someone else's"))
    if slug == "coinbase":
        stranger.api_key = "organizations/other/apiKeys/unknown"
        stranger.secret = demo_key("coinbase")[1]

    for question in (stranger.fetch_balances(), stranger.fetch_fees([SYMBOLS[slug]])):
        with pytest.raises(VenueError) as refused:
            await question
        assert words in str(refused.value)


@pytest.mark.asyncio
@pytest.mark.parametrize("slug", VENUES)
async def test_an_unreachable_venue_is_a_venue_error(simulator, slug):
    venue = live(simulator, slug, url=f"http://127.0.0.1:1/{slug}")

    with pytest.raises(VenueError) as unreachable:
        await venue.fetch_balances()

    assert "127.0.0.1:1" in str(unreachable.value)  # says where it could not reach


@pytest.mark.asyncio
async def test_kraken_refuses_the_fees_of_a_pair_it_does_not_list_in_its_words(simulator):
    with pytest.raises(VenueError) as refused:
        await live(simulator, "kraken").fetch_fees(["DOGE/USD"])

    assert "EQuery:Unknown asset pair" in str(refused.value)


@pytest.mark.asyncio
@pytest.mark.parametrize("slug", VENUES)
async def test_each_venue_lists_an_order_resting_there_that_the_desk_did_not_send(simulator, slug):
    venue = live(simulator, slug)
    before = await venue.fetch_open_orders()
    order_id = simulator.venues[slug].hold_order(
        demo_key(slug)[0], SYMBOLS[slug], side="sell", price=D(150), amount=D("0.25"), cid="by-hand"
    )

    listed = await venue.fetch_open_orders()

    assert before == []
    assert [(o.venue_order_id, o.client_order_id, o.side, o.amount, o.price) for o in listed] == [
        (order_id, "by-hand", "sell", D("0.25"), D(150))
    ]
    other = live(simulator, slug, key=demo_key(f"{slug} someone else"))
    if slug != "coinbase":  # another key sees none of it (Coinbase's stand-in has one key here)
        simulator.venues[slug].open_account(
            *demo_key(f"{slug} someone else"), FUNDING, demo_passphrase(slug)
        )
        assert await other.fetch_open_orders() == []


@pytest.mark.asyncio
@pytest.mark.parametrize("slug", VENUES)
async def test_a_fill_worth_more_digits_than_the_lot_shows_leaves_balances_exact(slug):
    # 0.12345678 BTC at 100.1 costs 12.357823678: nine decimals of quote.
    listing = SimListing(SYMBOLS[slug], D("0.1"), D("0.00000001"))
    markets = {"BTC-USDT": MarketSpec(mid=D(100), size=D(1), listings={slug: listing})}
    async with VenueSimulator(markets=markets, profiles={slug: STILL}) as simulator:
        simulator.venues[slug].open_account(*demo_key(slug), FUNDING, demo_passphrase(slug))
        simulator.venues[slug].set_book(
            SYMBOLS[slug], bids=[(D(99), D(1))], asks=[(D("100.1"), D(1))]
        )
        venue = live(simulator, slug)
        await venue.place_ioc(
            OrderRequest(
                client_order_id=f"arb-2-{int(time.time() * 1000):x}-buy",
                venue=slug,
                market="BTC-USDT",
                venue_symbol=SYMBOLS[slug],
                side="buy",
                amount=D("0.12345678"),
                limit_price=D("100.1"),
                taker_fee_bps=simulator.venues[slug].taker_fee_bps,
            )
        )

        reported = await venue.fetch_balances()

        held = simulator.venues[slug].holdings(demo_key(slug)[0])
        assert plain(reported) == plain(held)
        assert held["BTC"] == D("2.12345678")
