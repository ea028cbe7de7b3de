"""Site-wide endpoints: health, the audited password page, and a login's second factor."""

from base64 import b32encode

import qrcode
import qrcode.image.svg
from axes.helpers import get_lockout_response
from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import audit, twofactor
from .health import health_report, public_report


@never_cache
@require_GET
def healthz(request):
    """Up or down per part, and 503 when a required part is down; the details for staff."""
    ok, report = health_report()
    if not request.user.is_staff:
        report = public_report(report)
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


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


def _next_url(request) -> str:
    """Where a finished login goes: its `next` when it is on this site, else the dashboard."""
    url = request.POST.get("next") or request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(url, {request.get_host()}, request.is_secure()):
        return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


# The page header shows a login that still owes its code as no login (no desk links).
OWING_CODE = {"user": AnonymousUser()}


def _locked_out(request):
    """Axes' lock-out page; the half-finished login ends with it."""
    credentials = {"username": request.user.get_username()}
    logout(request)
    return get_lockout_response(request, credentials=credentials)


@never_cache
@login_required
def second_factor(request):
    """The code step of a login: a code of the authenticator app, or one recovery code."""
    user = request.user
    if twofactor.passed(user):
        return HttpResponseRedirect(_next_url(request))
    if not user_has_device(user):
        return redirect(twofactor.step_url("second_factor_enrol", _next_url(request)))
    if twofactor.locked_out(request):
        return _locked_out(request)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        device = twofactor.verified_device(user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            twofactor.forget_failures(request, user)
            if isinstance(device, StaticDevice):
                left = {"recovery codes left": device.token_set.count()}
                audit.record("recovery code used", user=user, request=request, after=left)
            else:
                audit.record("second factor passed", user=user, request=request)
            return HttpResponseRedirect(_next_url(request))
        audit.record("second factor refused", user=user, request=request)
        if twofactor.count_wrong_code(request):
            return _locked_out(request)
        form.add_error("code", "That code is not right: try the current one, or a recovery code.")
    context = {**OWING_CODE, "form": form, "next": _next_url(request)}
    return render(request, "registration/second_factor.html", context)


@never_cache
@login_required
def second_factor_enrol(request):
    """Set up an authenticator app: its key as a QR code and as text, confirmed by a first code;
    then the recovery codes, shown this once."""
    user = request.user
    if user_has_device(user):
        return redirect(twofactor.step_url("second_factor", _next_url(request)))
    device = twofactor.pending_authenticator(user)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        codes = twofactor.confirm_authenticator(device, form.cleaned_data["code"])
        if codes is not None:
            otp_login(request, device)
            twofactor.forget_failures(request, user)
            audit.record("second factor enrolled", user=user, request=request, obj=user)
            context = {"codes": codes, "next": _next_url(request)}
            return render(request, "registration/recovery_codes.html", context)
        form.add_error("code", "That code is not right: check the app's clock and try again.")
    key = b32encode(device.bin_key).decode()
    qr = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    context = {
        **OWING_CODE,
        "form": form,
        "next": _next_url(request),
        "key": " ".join(key[i : i + 4] for i in range(0, len(key), 4)),
        "uri": device.config_url,
        # Inline SVG markup made from our own URI: no script, no external service.
        "qr": mark_safe(qr.to_string(encoding="unicode")),
    }
    return render(request, "registration/second_factor_enrol.html", context)


@never_cache
@login_required
def recovery_codes(request):
    """Replace the recovery codes (the old ones all stop working), after a current code of the
    authenticator app; the new codes are shown this once."""
    user = request.user
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return redirect(twofactor.step_url("second_factor_enrol", reverse("dashboard")))
    if twofactor.locked_out(request):
        return _locked_out(request)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        if twofactor.authenticator_accepts(user, form.cleaned_data["code"]):
            codes = twofactor.replace_recovery_codes(user)
            audit.record("recovery codes replaced", user=user, request=request, obj=user)
            context = {"codes": codes, "next": reverse("dashboard"), "replaced": True}
            return render(request, "registration/recovery_codes.html", context)
        audit.record("second factor refused", user=user, request=request)
        if twofactor.count_wrong_code(request):
            return _locked_out(request)
        form.add_error("code", "That is not the app's current code: recovery codes do not count.")
    context = {"form": form, "left": twofactor.recovery_codes_left(user)}
    return render(request, "registration/replace_recovery_codes.html", context)
