"""Opportunities, trades and reports pages."""

from django.shortcuts import render

from arbsite.access import desk_view


@desk_view
def opportunities(request):
    return render(request, "opportunities.html")


@desk_view
def trades(request):
    return render(request, "trades.html")


@desk_view
def reports(request):
    return render(request, "reports.html")
