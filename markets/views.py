"""The dashboard page."""

from django.shortcuts import render

from arbsite.access import desk_view

from .models import Exchange, Market


@desk_view
def dashboard(request):
    markets = Market.objects.prefetch_related("listings__exchange")
    exchanges = Exchange.objects.filter(enabled=True)
    return render(request, "dashboard.html", {"markets": markets, "exchanges": exchanges})
