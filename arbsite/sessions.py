"""How long a login lasts: SESSION_COOKIE_AGE from its first request at most, and no longer than
SESSION_IDLE_TIMEOUT_S between two requests. A live page's WebSocket holds to the same rules
(`socket_still_allowed`): watching pushes is not a request."""

import time
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    logout,
)
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from arbsite import twofactor

LAST_SEEN = "last_seen"
# Among `socket_still_allowed`'s perms: staff status (what a staff-only fragment needs).
STAFF = "is_staff"
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


def socket_still_allowed(session_key: str | None, user_id: int, *perms: str) -> bool:
    """Whether a WebSocket opened by `user_id` on `session_key` may go on hearing pushes: the
    login is still there (not logged out, not past its age, not idle too long), made with the
    user's current password, verified by a device the user still has where they need a code,
    and its user still active and holding every one of `perms` (`STAFF`: staff status; read
    afresh, not from the socket's cached user)."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()  # {} once the session was flushed (logout) or expired
    if str(data.get(SESSION_KEY)) != str(user_id) or not data.get(BACKEND_SESSION_KEY):
        return False
    last = data.get(LAST_SEEN)
    if last is not None and time.time() - last > settings.SESSION_IDLE_TIMEOUT_S:
        return False
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not password_unchanged(data.get(HASH_SESSION_KEY), user):
        return False
    held = (user.is_staff if perm == STAFF else user.has_perm(perm) for perm in perms)
    return twofactor.session_passed(user, data) and all(held)


def password_unchanged(session_hash: str | None, user) -> bool:
    """Whether a login's auth hash is the user's, as `django.contrib.auth.get_user` checks it
    (a hash of a fallback secret key included): a password change ends every other login."""
    if not session_hash:
        return False
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(session_hash, h) for h in hashes)
