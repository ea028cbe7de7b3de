"""The live fragments: which page partials each kind of notice re-renders, and who may see them."""

from collections.abc import Callable
from dataclasses import dataclass

from django.template.loader import render_to_string

from arbsite.access import TRADES_PERM, VIEW, VIEW_PERM
from arbsite.pages import dashboard, market, opportunities, portfolio, trades
from arbsite.pages.desk import desk_context, risk_status_context
from markets import notices


@dataclass(frozen=True, slots=True)
class Fragment:
    """One pushed partial: its topic (what a page asks for), template and context function.

    `context` is called with the key and the audience; `by_audience` renders it once per
    audience when it shows controls only Traders may use, otherwise once for everyone.
    """

    topic: str
    template: str
    context: Callable[..., dict]
    keyed: bool = False
    by_audience: bool = False
    perm: str = VIEW_PERM
    staff_only: bool = False

    def audience_for(self, audience: str) -> str:
        return audience if self.by_audience else VIEW

    def render(self, key: str, audience: str, published: float) -> str:
        context = {**self.context(key, audience=audience), "published": f"{published:.6f}"}
        return render_to_string(self.template, context)


# What each kind of notice (markets.notices) re-renders.
FRAGMENTS: dict[str, list[Fragment]] = {
    notices.MARKET: [
        Fragment("spreads", "dashboard.html#spread", dashboard.spread_context, keyed=True),
        Fragment("depth", "market_detail.html#depth", market.depth_context, keyed=True),
    ],
    notices.OPPORTUNITIES: [
        Fragment(
            "opportunities",
            "dashboard.html#open-opportunities",
            opportunities.open_opportunities_context,
            by_audience=True,
        ),
        # The status bar counts the open opportunities for the tab title.
        Fragment("desk", "base.html#desk-status", desk_context, by_audience=True),
    ],
    notices.HEALTH: [
        Fragment("health", "dashboard.html#venue-health", dashboard.health_context),
        Fragment("desk", "base.html#desk-status", desk_context, by_audience=True),
        Fragment(
            "controls", "dashboard.html#controls", dashboard.controls_context, by_audience=True
        ),
    ],
    notices.TRADES: [
        Fragment(
            "trades", "dashboard.html#recent-trades", trades.recent_trades_context, perm=TRADES_PERM
        ),
        Fragment("pnl", "dashboard.html#pnl", portfolio.pnl_context),
        # A trade's own market: the chart's marks (Trade.publish_change).
        Fragment(
            "marks",
            "market_detail.html#trade-marks",
            market.trade_marks_context,
            keyed=True,
            perm=TRADES_PERM,
        ),
    ],
    notices.PORTFOLIO: [
        Fragment("portfolio", "portfolio.html#balances", portfolio.balances_context),
        Fragment("portfolio", "portfolio.html#reconciliation", portfolio.reconciliation_context),
        Fragment("pnl", "dashboard.html#pnl", portfolio.pnl_context),
    ],
    notices.RISK_STATUS: [
        Fragment(
            "risk-status",
            "admin/risk/riskprofile/change_form.html#risk-status",
            risk_status_context,
            perm="risk.view_riskprofile",
            staff_only=True,
        ),
    ],
}
# topic -> each (kind, fragment) that renders it: "pnl" follows both trades and balances.
TOPICS: dict[str, list[tuple[str, Fragment]]] = {
    topic: [
        (kind, f) for kind, fragments in FRAGMENTS.items() for f in fragments if f.topic == topic
    ]
    for topic in {f.topic for fragments in FRAGMENTS.values() for f in fragments}
}
