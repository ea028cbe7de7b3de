"""The second factor of a login (django-otp: an authenticator app's TOTP codes and recovery codes):
who needs one, whether a login has passed it, enrolment, and the lock-out count of wrong codes."""

from axes.handlers.proxy import AxesProxyHandler
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.deprecation import MiddlewareMixin
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user, user_has_device, verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODES = 10
# What a user who has given the password but still owes the code may reach.
OPEN_VIEWS = {"second_factor", "second_factor_enrol", "logout"}


def required(user) -> bool:
    """Whether the user's role (OTP_REQUIRED_ROLES) asks for a second factor; superusers always."""
    return user.is_superuser or user.groups.filter(name__in=settings.OTP_REQUIRED_ROLES).exists()


def needs_code(user) -> bool:
    """Whether this user's login is complete only with a code: required, or enrolled anyway."""
    return required(user) or user_has_device(user)


def passed(user) -> bool:
    """Whether a request's logged-in user has passed the second factor or needs none.

    `user.otp_device` is the device that verified this session (django-otp's OTPMiddleware).
    """
    return getattr(user, "otp_device", None) is not None or not needs_code(user)


async def socket_passed(scope: dict) -> bool:
    """The same for a WebSocket, whose user comes from the session without OTPMiddleware."""
    return await database_sync_to_async(_socket_passed)(scope["user"], scope.get("session"))


def _socket_passed(user, session) -> bool:
    if getattr(user, "otp_device", None) is None:
        user.otp_device = _session_device(user, session)
    return passed(user)


def session_passed(user, session) -> bool:
    """`passed` for the login held in `session` (a session or its loaded data), its device read
    afresh: a second factor reset since ends a login that needs a code."""
    return _session_device(user, session) is not None or not needs_code(user)


def _session_device(user, session) -> Device | None:
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    if device is None or device.user_id != user.pk or not device.confirmed:
        return None
    return device


class SecondFactorMiddleware(MiddlewareMixin):
    """After OTPMiddleware: a login that still owes its code reaches only the code step (which
    leads to enrolment when there is no device yet) and logout; the admin included."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or request.resolver_match.view_name in OPEN_VIEWS:
            return None
        if passed(user):
            return None
        if request.htmx:
            next_url = request.htmx.current_url_abs_path or reverse(settings.LOGIN_REDIRECT_URL)
            return HttpResponseClientRedirect(step_url("second_factor", next_url))
        return redirect(step_url("second_factor", request.get_full_path()))


def step_url(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def verified_device(user, code: str) -> Device | None:
    """The device that accepts `code`: a 6-digit code of the authenticator, or a recovery code
    (used up). Each wrong try also slows that device down (django-otp's throttling)."""
    code = "".join(code.split()).lower()
    model = TOTPDevice if len(code) == 6 and code.isdigit() else StaticDevice
    for device in model.objects.devices_for_user(user, confirmed=True):
        if verify_token(user, device.persistent_id, code):
            return device
    return None


def pending_authenticator(user) -> TOTPDevice:
    """The authenticator being enrolled: made on first asking, its key kept until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def confirm_authenticator(device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the authenticator with its first code; the new recovery codes, or None if wrong."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not device.verify_token("".join(code.split())):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = replace_recovery_codes(device.user)
    return codes


def authenticator_accepts(user, code: str) -> bool:
    """Whether `code` is the current code of the user's authenticator app (not a recovery code):
    the proof a user still holds the app before their recovery codes are replaced."""
    code = "".join(code.split())
    return any(
        verify_token(user, device.persistent_id, code)
        for device in TOTPDevice.objects.devices_for_user(user, confirmed=True)
    )


def replace_recovery_codes(user) -> list[str]:
    """A new set of recovery codes for `user`; every code given before stops working."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        recovery = StaticDevice.objects.create(user=user, name="recovery codes")
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
        StaticToken.objects.bulk_create(StaticToken(device=recovery, token=code) for code in codes)
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def reset(user) -> int:
    """Remove all the user's devices: their next login enrols again. Returns how many."""
    devices = list(devices_for_user(user, confirmed=None))
    for device in devices:
        device.delete()
    return len(devices)


def _credentials(user) -> dict:
    return {"username": user.get_username()}


def locked_out(request: HttpRequest) -> bool:
    """Whether axes holds this username at this address locked (by wrong passwords or codes)."""
    return AxesProxyHandler.is_locked(request, _credentials(request.user))


def count_wrong_code(request: HttpRequest) -> bool:
    """Count a wrong code as axes counts a wrong password; whether that locked the account."""
    AxesProxyHandler.user_login_failed(
        sender=__name__, credentials=_credentials(request.user), request=request
    )
    return bool(request.axes_locked_out)


def forget_failures(request: HttpRequest, user) -> None:
    """A complete login clears its failed attempts (what AXES_RESET_ON_SUCCESS would do)."""
    AxesProxyHandler.update_request(request)
    AxesProxyHandler.reset_attempts(
        username=user.get_username(), ip_address=request.axes_ip_address
    )


@receiver(user_logged_in, dispatch_uid="twofactor_password_only_login")
def _password_only_login(sender, request, user, **kwargs) -> None:
    # A login that owes a code is complete only at the code step, so wrong codes keep counting
    # across a fresh password login (axes resets nothing by itself: AXES_RESET_ON_SUCCESS off).
    if request is not None and not needs_code(user):
        forget_failures(request, user)
