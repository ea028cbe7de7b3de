"""Shared fixtures: users per role, a paper desk; Django imported lazily for the pure tests."""

import socket
from decimal import Decimal

import pytest


@pytest.fixture
def user_with_role(db):
    """`make(role)`: a user of that role who has passed every factor of a login.

    A role that needs a second factor (OTP_REQUIRED_ROLES) comes with a confirmed authenticator
    as `user.otp_device`, as django-otp marks a verified user: `client.force_login(user)` then
    logs in past the code step (see `force_login_passes_the_code_step`), and a WebSocket scope
    holding the user counts as verified. Test the code step itself with a fresh login instead.
    """
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.factories import UserFactory

    def make(role: str | None):
        user = UserFactory()
        if role:
            user.groups.add(Group.objects.get(name=role))
        if role in settings.OTP_REQUIRED_ROLES:
            user.otp_device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        return user

    return make


@pytest.fixture(autouse=True)
def force_login_passes_the_code_step(request, monkeypatch):
    """`client.force_login(user)` of a user with `otp_device` also marks the session verified."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    from django.test.client import ClientMixin
    from django_otp import DEVICE_ID_SESSION_KEY

    force_login = ClientMixin.force_login

    def force_login_verified(self, user, backend=None) -> None:
        force_login(self, user, backend)
        device = getattr(user, "otp_device", None)
        if device is not None:
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()

    monkeypatch.setattr(ClientMixin, "force_login", force_login_verified)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, dropped at the end even if a thread of a test (an engine's, a
    consumer's) left its connection open: PostgreSQL refuses to drop a database in use."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def fast_password_hashing(request):
    if request.config.pluginmanager.hasplugin("django"):
        settings = request.getfixturevalue("settings")
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def debug_desk(settings):
    """The desk as `make run` serves it (DJANGO_DEBUG=1), which pytest-django turns off: only
    there does seed_demo give the demo users the published password."""
    settings.DEBUG = True


@pytest.fixture
def fresh_cache(db):
    """Redis outlives a test's transaction: start each test with no cached switch or alert."""
    from django.core.cache import cache, caches

    cache.clear()
    caches["books"].clear()
    yield
    cache.clear()
    caches["books"].clear()


@pytest.fixture
def desk(fresh_cache):
    """An active paper profile on kraken and coinbase for BTC-USD, and a good opportunity."""
    from tests.factories import (
        ExchangeFactory,
        MarketFactory,
        OpportunityFactory,
        RiskProfileFactory,
        publish_test_book,
    )

    market = MarketFactory(symbol="BTC-USD")
    kraken, coinbase = ExchangeFactory(slug="kraken"), ExchangeFactory(slug="coinbase")
    profile = RiskProfileFactory(
        name="paper desk", auto_execute=True, max_notional=Decimal(1000), min_profit_bps=Decimal(5)
    )
    profile.allowed_exchanges.set([kraken, coinbase])
    profile.allowed_markets.set([market])
    for venue in (kraken, coinbase):
        publish_test_book(venue.slug, "BTC-USD", bids=[(Decimal(100), Decimal(5))], asks=[])
    opportunity = OpportunityFactory(market=market, buy_exchange=kraken, sell_exchange=coinbase)
    return profile, opportunity


@pytest.fixture
def heard():
    """`heard(kind, key="")` listens to that kind's live notices from now on (tests.notices)."""
    from tests.notices import Heard

    made: list[Heard] = []

    def listen(kind: str, key: str = "") -> Heard:
        made.append(Heard(kind, key))
        return made[-1]

    yield listen
    for listener in made:
        listener.close()


@pytest.fixture
def media(settings, tmp_path):
    """Export files go to a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def history(day):
    """The hand-computed report history (tests.factories.report_history) on the module's `day`."""
    from tests.factories import report_history

    return report_history(day)


@pytest.fixture
def loop():
    """An event loop in a thread serving the simulated venues while the test's code blocks."""
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture
def dead_broker(monkeypatch):
    """Celery, not eager, pointed at a Redis port nobody listens on: the broker is down."""
    from arbsite.celery import app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed, and nothing listens on it
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "broker_url", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setattr(app, "_pool", None)  # the pools hold connections to the old broker
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    if app._pool is not None:
        app._pool.force_close_all()
