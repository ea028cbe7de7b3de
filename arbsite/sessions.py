"""How long a login lasts: SESSION_COOKIE_AGE from its first request at most, and no longer than
SESSION_IDLE_TIMEOUT_S between two requests."""

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import logout
from django.utils import timezone

LAST_SEEN = "last_seen"
# Stamping every request would save the session on every request; the idle timeout can be a
# minute late instead.
STAMP_EVERY_S = 60


def idle_timeout(get_response):
    """Log out a user whose previous request is older than SESSION_IDLE_TIMEOUT_S; the login
    page then follows from the view's own login check."""

    def middleware(request):
        if request.user.is_authenticated and idle_too_long(request.session):
            logout(request)
        return get_response(request)

    return middleware


def idle_too_long(session) -> bool:
    """Stamp this request on the session; True if the one before was too long ago."""
    now = time.time()
    last = session.get(LAST_SEEN)
    if last is None:
        # The login's first request: its day is counted from here, and never slides.
        session.set_expiry(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE))
    elif now - last > settings.SESSION_IDLE_TIMEOUT_S:
        return True
    if last is None or now - last >= STAMP_EVERY_S:
        session[LAST_SEEN] = now
    return False
