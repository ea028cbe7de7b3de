"""The desk's controls under /risk/: the kill switch (throw, reset), automatic execution on/off."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from arbsite.access import require_permission
from risk import services
from risk.models import KillSwitch

OPERATE = "arbsite.operate_desk"


class ThrowForm(forms.Form):
    reason = forms.CharField(
        max_length=200, help_text="Why the desk must stop; shown to everyone and kept in the audit."
    )


@require_permission(OPERATE)
@require_http_methods(["GET", "POST"])
def kill_switch(request: HttpRequest) -> HttpResponse:
    """GET: the confirmation page; POST: throw the switch with the reason given."""
    form = ThrowForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.throw_kill_switch(
            reason=form.cleaned_data["reason"], user=request.user, request=request
        ):
            messages.warning(request, "Kill switch on: nothing new will execute.")
        else:
            messages.info(request, "The kill switch was already on.")
        return _back(request)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "switch": KillSwitch.current(), "next": _next(request)}
    return render(request, "risk/kill_switch_confirm.html", context, status=status)


@require_permission(OPERATE)
@require_POST
def kill_switch_reset(request: HttpRequest) -> HttpResponse:
    if services.reset_kill_switch(user=request.user, request=request):
        messages.success(request, "Kill switch reset: the desk may trade again.")
    else:
        messages.info(request, "The kill switch was already off.")
    return _back(request)


@require_permission(OPERATE)
@require_POST
def auto_execution(request: HttpRequest) -> HttpResponse:
    """Switch the active paper profile's automatic execution: `on` is "1" or "0"."""
    on = request.POST.get("on")
    if on not in {"0", "1"}:
        return HttpResponse("Say on=1 or on=0.", status=400)
    if services.set_auto_execution(on=on == "1", user=request.user, request=request):
        messages.success(request, f"Automatic execution {'on' if on == '1' else 'off'}.")
    else:
        messages.info(request, "Nothing changed: no active paper profile, or it already was so.")
    return _back(request)


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""


def _back(request: HttpRequest) -> HttpResponse:
    # A URL as given: redirect() would take a `next` of "0" or "foo" for a view name.
    target = _next(request) or reverse("dashboard")
    if request.htmx:  # a whole page with its messages, not a page swapped into the form
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)


app_name = "risk"
urlpatterns = [
    path("kill-switch/", kill_switch, name="kill_switch"),
    path("kill-switch/reset/", kill_switch_reset, name="kill_switch_reset"),
    path("auto-execution/", auto_execution, name="auto_execution"),
]
