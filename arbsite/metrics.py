"""The web process's /metrics: the engine's feeds as its heartbeat reports them, the site's, and
the acknowledgement times of the orders this process sent (a Trader's executions, in embedded
mode)."""

import time

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from markets.heartbeat import engine_feed_healths, engine_heartbeat
from markets.metrics import FeedCollector, bearer_token_ok
from trading.execution.orders import ACK_LATENCY
from trading.models import Opportunity


class SiteCollector(Collector):
    def collect(self):
        heartbeat = engine_heartbeat()
        age = GaugeMetricFamily(
            "arb_engine_heartbeat_age_seconds", "Seconds since the engine's last heartbeat"
        )
        if heartbeat is not None:
            age.add_metric([], time.time() - heartbeat["ts"])
        yield age
        open_count = GaugeMetricFamily("arb_opportunities_open", "Opportunities open now")
        open_count.add_metric([], Opportunity.objects.filter(state="open").count())
        yield open_count


REGISTRY = CollectorRegistry()
REGISTRY.register(FeedCollector(engine_feed_healths))
REGISTRY.register(SiteCollector())
REGISTRY.register(ACK_LATENCY)


def metrics(request):
    """Prometheus scrape: a bearer METRICS_TOKEN, or a logged-in user allowed to read metrics."""
    authorization = request.headers.get("Authorization", "")
    token_ok = bearer_token_ok(authorization, settings.METRICS_TOKEN)
    if not (token_ok or request.user.has_perm("arbsite.view_metrics")):
        return HttpResponse("metrics need METRICS_TOKEN or an administrator's login", status=403)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
