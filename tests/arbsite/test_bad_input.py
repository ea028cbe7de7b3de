"""Bad input never makes a page fail: odd stored symbols, far dates, NUL bytes, random queries."""

from datetime import date, timedelta
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import NoReverseMatch, URLResolver, reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbsite import audit, urls
from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, ROLE_PERMISSIONS, TRADER, VIEWER
from markets.models import Market
from tests.factories import ListingFactory, MarketFactory, UserFactory, report_history
from trading.models import Export

pytestmark = pytest.mark.django_db

FAR = "9999-12-31"


@pytest.fixture
def no_second_factor(settings):
    """These tests are about the pages behind a login, not the login's second factor."""
    settings.OTP_REQUIRED_ROLES = []


@pytest.fixture
def administrator(client, user_with_role, no_second_factor):
    client.force_login(user_with_role(ADMINISTRATOR))
    return client


def test_a_market_stored_with_a_slash_shows_on_the_dashboard_without_a_link(
    administrator, fresh_cache
):
    ListingFactory(market=MarketFactory(symbol="BTC-EUR"))
    MarketFactory(symbol="ETH-USD")
    Market.objects.filter(symbol="BTC-EUR").update(symbol="BTC/EUR")  # written before validation

    response = administrator.get(reverse("dashboard"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "BTC/EUR</a>" not in html and "BTC/EUR across venues" in html
    assert f'<a href="{reverse("market_detail", args=["ETH-USD"])}">ETH-USD</a>' in html


@pytest.mark.parametrize(
    ("url", "query", "status"),
    [
        ("opportunities", {"until": FAR}, 200),
        ("opportunities", {"since": FAR}, 200),
        ("trades", {"until": FAR}, 200),
        ("reports", {"period": "custom", "since": "2026-01-01", "until": FAR}, 200),
        ("reports", {"period": "custom", "since": FAR, "until": FAR}, 200),
        ("reports_trades_csv", {"period": "custom", "since": FAR, "until": FAR}, 400),
        ("audit", {"end": FAR}, 200),
        ("audit", {"start": "0001-01-01"}, 200),
    ],
)
def test_a_date_beyond_the_desks_range_is_a_form_error(administrator, url, query, status):
    response = administrator.get(reverse(url), query)

    assert response.status_code == status
    if status == 200:
        assert "Enter a date between 2000-01-01 and 2099-12-31." in response.content.decode()


def test_an_export_of_a_period_beyond_the_desks_range_is_refused(administrator):
    data = {"period": "custom", "since": FAR, "until": FAR, "kind": "trades", "format": "csv"}

    response = administrator.post(reverse("export_create"), data)

    assert response.status_code == 400


@pytest.mark.parametrize("symbol", ["BTC\x00USD", "%00", "BTC-USD\x00"])
def test_a_nul_byte_in_a_market_page_address_is_not_found(administrator, symbol):
    MarketFactory(symbol="BTC-USD")

    response = administrator.get(f"/markets/{symbol}/")

    assert response.status_code == 404


@pytest.mark.parametrize("control", ["risk:kill_switch_reset", "risk:auto_execution"])
def test_a_control_goes_back_to_a_next_that_looks_like_a_view_name_as_an_address(
    administrator, control
):
    response = administrator.post(reverse(control), {"on": "1", "next": "0"})

    assert (response.status_code, response["Location"]) == (302, "0")


# Every page, every role, random input: never a 5xx -------------------------------------------

NO_INPUT = {"logout", "password_change_done", "healthz", "metrics"}  # and logout ends a session
REPORT = ("period", "since", "until", "market", "venue", "mode")
# url name -> (method, the fields its forms read); a path argument is drawn apart.
PAGES = {
    "dashboard": ("get", ()),
    "market_detail": ("get", ()),
    "opportunities": ("get", ("market", "buy", "sell", "since", "until", "taken", "reason")),
    "opportunity_detail": ("get", ()),
    "execute": ("get", ()),
    "execute POST": ("post", ()),
    "trades": ("get", ("market", "venue", "state", "mode", "since", "until", "trade")),
    "trade_residual": ("get", ()),
    "trade_residual POST": ("post", ("note",)),
    "reports": ("get", REPORT),
    "reports_trades_csv": ("get", REPORT),
    "export_create": ("post", (*REPORT, "kind", "format")),
    "export_status": ("get", ()),
    "export_download": ("get", ()),
    "portfolio": ("get", ()),
    "portfolio_adjust": ("get", ("account", "asset", "amount", "reason")),
    "portfolio_adjust POST": ("post", ("account", "asset", "amount", "reason")),
    "preferences": ("post", ("theme", "clock", "next")),
    "login": ("get", ("next",)),
    "login POST": ("post", ("username", "password", "next")),
    "second_factor": ("get", ("next",)),
    "second_factor POST": ("post", ("code", "next")),
    "second_factor_enrol": ("get", ("next",)),
    "second_factor_enrol POST": ("post", ("code", "next")),
    "recovery_codes": ("get", ()),
    "recovery_codes POST": ("post", ("code",)),
    "password_change": ("get", ()),
    "password_change POST": ("post", ("old_password", "new_password1", "new_password2")),
    "risk:kill_switch": ("get", ("next",)),
    "risk:kill_switch POST": ("post", ("reason", "next")),
    "risk:kill_switch_reset": ("post", ("next",)),
    "risk:auto_execution": ("post", ("on", "next")),
    "audit": ("get", ("action", "user", "start", "end")),
}
# The pages that filter the history by dates: their forms get more examples.
HISTORY = ["opportunities", "trades", "reports", "reports_trades_csv", "export_create", "audit"]
# None: anonymous; a superuser always owes a second factor, and has no device yet.
ROLES = [None, "no role", VIEWER, TRADER, RISK_MANAGER, ADMINISTRATOR, "superuser"]
PK, SYMBOL = 987654321, "SYMBOL"

text = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    st.sampled_from(["\x00", "BTC-USD\x00", "", " ", "../", "%00", "<b>"]),
)
dates = st.one_of(
    st.sampled_from([date.max, date.min]).map(date.isoformat),  # no day after the one, or before
    st.sampled_from(["2026-02-30", "99999-01-01", "2026-1-1"]),
    st.dates().map(date.isoformat),
)
numbers = st.one_of(
    st.integers(), st.floats(), st.sampled_from(["1e309", "NaN", "-0", "0x1f", "٣"])
).map(str)
anything = st.one_of(text, dates, numbers)
# What each field takes when it is right, so random input also reaches the queries behind a
# valid form.
TYPED = {
    **dict.fromkeys(["since", "until", "start", "end"], dates),
    **dict.fromkeys(["page", "trade", "account"], st.integers().map(str)),
    **dict.fromkeys(["venue", "buy", "sell"], st.sampled_from(["buyv", "sellv"])),
    "market": st.sampled_from(["BTC-USD", "ETH-USD", "BTC/EUR"]),
    "period": st.sampled_from(["custom", "custom", "today", "7d", "365d"]),
    "mode": st.sampled_from(["paper", "live"]),
    "state": st.sampled_from(["closed", "failed"]),
    "taken": st.sampled_from(["yes", "no"]),
    "sort": st.sampled_from(["-net", "bps", "-created", "pnl", "size"]),
    "kind": st.sampled_from(["trades", "summary"]),
    "format": st.sampled_from(["csv", "xlsx"]),
    "on": st.sampled_from(["0", "1"]),
    "next": st.sampled_from(["/trades/", "//evil.example", "https://evil.example/", "\x00"]),
}


def form_data(fields: tuple[str, ...]) -> st.SearchStrategy[dict]:
    """Some of `fields` as the page sends them, then a few keys (theirs or random) set to
    anything at all, one value or several."""
    fields = (*fields, "page", "sort")
    typed = st.fixed_dictionaries({}, optional={f: TYPED.get(f, text) for f in fields})
    odd = st.dictionaries(
        st.one_of(st.sampled_from(fields), text),
        st.one_of(anything, st.lists(anything, min_size=2, max_size=3)),
        max_size=2,
    )
    return st.tuples(typed, odd).map(lambda parts: {**parts[0], **parts[1]})


def site_url_names() -> set[str]:
    """Every named URL of the site outside the admin, as `reverse` takes it."""
    names = set()
    for entry in urls.urlpatterns:
        if isinstance(entry, URLResolver):
            if entry.app_name != "admin":
                prefix = f"{entry.namespace}:" if entry.namespace else ""
                names |= {prefix + p.name for p in entry.url_patterns if p.name}
        elif entry.name:
            names.add(entry.name)
    return names


def test_the_bad_input_sweep_covers_every_page_that_takes_input():
    covered = {name.removesuffix(" POST") for name in PAGES}

    assert site_url_names() - NO_INPUT == covered
    assert any(isinstance(e, URLResolver) and e.app_name == "admin" for e in urls.urlpatterns)


@pytest.fixture
def clients(user_with_role, fresh_cache, media, no_second_factor) -> dict:
    """A logged-in client per role on a desk with some history."""
    day = timezone.now().date() - timedelta(days=2)
    history = report_history(day)
    for venue in ("buyv", "sellv"):
        ListingFactory(market=history["a"].opportunity.market, exchange__slug=venue)
    MarketFactory(symbol="BTC-EUR")
    Market.objects.filter(symbol="BTC-EUR").update(symbol="BTC/EUR")
    made = {None: Client()}
    for role in ROLES[1:]:
        user = user_with_role(role if role in ROLE_PERMISSIONS else None)
        if role == "superuser":
            user.is_superuser = True
            user.save()
        made[role] = Client()
        made[role].force_login(user)
        expires = timezone.now() + timedelta(hours=1)
        Export.objects.create(user=user, kind="trades", format="csv", params={}, expires_at=expires)
    audit.record("desk started", username="test")
    return made


def _path(name: str, data: st.DataObject) -> str:
    url = name.removesuffix(" POST")
    if url == "market_detail":
        symbol = data.draw(st.one_of(text, TYPED["market"]), label="symbol")
        return reverse(url, args=[SYMBOL]).replace(SYMBOL, quote(symbol, safe=""))
    try:
        path = reverse(url, args=[PK])
    except NoReverseMatch:
        return reverse(url)
    pks = st.one_of(st.integers(0, 30), st.integers(0, 10**30))
    return path.replace(str(PK), str(data.draw(pks, label="pk")))


def send_anything(clients: dict, name: str, data: st.DataObject):
    """Send the page `name` a random form as a random role, and read all of its answer."""
    method, fields = PAGES[name]
    client = clients[data.draw(st.sampled_from(ROLES), label="role")]
    form = data.draw(form_data(fields), label="form")
    htmx = {"HX-Request": "true"} if data.draw(st.booleans(), label="htmx") else {}
    response = getattr(client, method)(_path(name, data), form, headers=htmx)
    if response.streaming:  # the test client closes it once it is read to the end
        b"".join(response.streaming_content)
    return response


SWEEP = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", [name for name in PAGES if name not in HISTORY])
@settings(SWEEP, max_examples=20)
@given(data=st.data())
def test_a_page_never_answers_random_input_with_a_server_error(clients, name, data):
    response = send_anything(clients, name, data)

    assert response.status_code < 500


@pytest.mark.parametrize("name", HISTORY)
@settings(SWEEP, max_examples=80)
@given(data=st.data())
def test_a_history_page_never_answers_a_random_filter_with_a_server_error(clients, name, data):
    response = send_anything(clients, name, data)

    assert response.status_code < 500


ADMIN_MODELS = sorted(model._meta.label_lower for model in admin.site._registry)


@pytest.fixture
def staff(clients) -> Client:
    """Staff holding every permission, so that every admin page answers (roles: see above)."""
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    client = Client()
    client.force_login(user)
    return client


@settings(SWEEP, max_examples=60)
@given(model=st.sampled_from(ADMIN_MODELS), data=st.data())
def test_the_admin_never_answers_a_random_list_query_or_object_id_with_a_server_error(
    staff, model, data
):
    app_label, name = model.split(".")
    fields = [f.name for f in apps.get_model(model)._meta.concrete_fields]
    keys = st.one_of(
        st.sampled_from(["q", "o", "p", "e", "all", *fields, *(f"{f}__exact" for f in fields)]),
        st.sampled_from(fields).map(lambda field: f"{field}__year"),
        text,
    )
    query = data.draw(st.dictionaries(keys, anything, max_size=4), label="query")
    changelist = reverse(f"admin:{app_label}_{name}_changelist")
    ids = st.one_of(st.integers(1, 3), st.integers(0, 10**25)).map(str)
    object_id = data.draw(st.one_of(ids, text), label="object id")

    listed = staff.get(changelist, query)
    changed = staff.get(f"{changelist}{quote(object_id, safe='')}/change/")

    assert listed.status_code < 500
    assert changed.status_code < 500
