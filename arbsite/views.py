"""Site-wide endpoints: health, and the audited password page."""

from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import audit
from .health import health_report


@never_cache
@require_GET
def healthz(request):
    ok, report = health_report()
    return JsonResponse({"status": "ok" if ok else "down", **report}, status=200 if ok else 503)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's own page, with each change of one's password recorded in the audit trail.

    The admin's self-service link leads here too (see `urls`), so there is one such page.
    """

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.record(
            "password changed", user=self.request.user, request=self.request, obj=form.user
        )
        return response
