"""The portfolio page."""

from django.shortcuts import render

from arbsite.access import desk_view


@desk_view
def portfolio(request):
    return render(request, "portfolio.html")
