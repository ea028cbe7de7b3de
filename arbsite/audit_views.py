"""The audit page: the trail newest first, filtered by action, user and date range."""

from datetime import datetime, time, timedelta

from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET

from arbsite.access import require_permission
from arbsite.models import AuditEvent
from trading.history import DayField

PAGE_SIZE = 50


class AuditFilter(forms.Form):
    action = forms.ChoiceField(required=False)
    user = forms.CharField(required=False, label="User name")
    start = DayField(label="From")
    end = DayField(label="To")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
        self.fields["action"].choices = [("", "any"), *((a, a) for a in actions)]

    def filter(self, events: QuerySet) -> QuerySet:
        data = self.cleaned_data
        if data.get("action"):
            events = events.filter(action=data["action"])
        if data.get("user"):
            events = events.filter(username__iexact=data["user"].strip())
        if data.get("start"):
            events = events.filter(at__gte=_midnight(data["start"]))
        if data.get("end"):
            # "To" includes the whole of that day.
            events = events.filter(at__lt=_midnight(data["end"]) + timedelta(days=1))
        return events


def _midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


@require_permission("arbsite.view_audit")
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilter(request.GET or None)
    events = AuditEvent.objects.all()
    if form.is_bound and form.is_valid():
        events = form.filter(events)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit.html", {"form": form, "page": page, "query": query.urlencode()})


# Included from arbsite/urls.py as "audit/".
urlpatterns = [path("", audit, name="audit")]
