"""What every page shows (the desk status bar) and how a page answers a plain or htmx request."""

from django.http import HttpResponse
from django.shortcuts import render

from arbsite.access import OPERATE, VIEW, audience
from arbsite.pages import shared
from portfolio.models import Mode
from trading.selectors import status_panel


def desk_context(key: str = "", *, audience: str = VIEW) -> dict:
    """The status every page shows: paper or live, the kill switch, automatic execution, and
    how many opportunities are open (the tab title carries it with the kill switch)."""
    actives = shared.active_profiles()
    paper, live = actives.get(Mode.PAPER), actives.get(Mode.LIVE)
    active = [p for p in (paper, live) if p is not None]
    return {
        "desk": {
            "mode": "Live" if live else "Paper",
            "auto_execute": any(p.auto_execute for p in active),
            # What the dashboard's switch turns (None: no active paper profile to switch).
            "paper_auto_execute": paper.auto_execute if paper else None,
            "kill_switch": _kill_switch_state(),
            "can_operate": audience == OPERATE,
            "open_opportunities": len(shared.open_opportunities()),
        }
    }


def _kill_switch_state() -> dict:
    switch = shared.kill_switch()
    if switch is None:
        return {"on": False, "reason": "", "changed_at": None, "automatic": False}
    return {
        "on": switch.is_on,
        "reason": switch.reason,
        "changed_at": switch.changed_at,
        "automatic": switch.automatic,
    }


def risk_status_context(key: str = "", *, audience: str = VIEW) -> dict:
    """The risk profile admin's live status section."""
    return {"status": status_panel()}


def render_page(request, template: str, context: dict, fragment: str = "") -> HttpResponse:
    """Answer htmx with `template#fragment` and a plain request with the page and desk status."""
    if fragment and request.htmx and not request.htmx.history_restore_request:
        return render(request, f"{template}#{fragment}", context)
    status = desk_context(audience=audience(request.user))
    return render(request, template, {**status, **context})
