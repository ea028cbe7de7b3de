"""Site-wide endpoints: health."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import health_report


@never_cache
@require_GET
def healthz(request):
    ok, report = health_report()
    return JsonResponse({"status": "ok" if ok else "down", **report}, status=200 if ok else 503)
