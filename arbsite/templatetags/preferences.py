"""The user's page preferences in every template (`{% user_preferences as prefs %}`), and times
written as the pages show them (`{{ when|moment }}`: UTC, set to the reader's clock by desk.js)."""

from datetime import UTC, datetime

from django import template
from django.utils.html import format_html

from arbsite.models import Preferences

register = template.Library()

# How much of a moment each page shows: the day and second, to the microsecond, or the time alone.
SHOWN = {"": "%Y-%m-%d %H:%M:%S", "precise": "%Y-%m-%d %H:%M:%S.%f", "time": "%H:%M:%S.%f"}


@register.simple_tag(takes_context=True)
def user_preferences(context) -> Preferences:
    user = context.get("user")
    return Preferences.of(user) if user is not None else Preferences()


@register.filter
def moment(value: datetime | None, shown: str = "") -> str:
    """`<time>` of `value` in UTC, which static/js/desk.js rewrites in local time for a user who
    chose it; the same markup on the page load, the htmx swap and the live push."""
    if value is None:
        return ""
    utc = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" data-shown="{}">{} UTC</time>',
        utc.isoformat(),
        shown or "day",
        utc.strftime(SHOWN[shown]),
    )
