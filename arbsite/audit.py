"""The audit trail: `record()` for any action, the admin mixin, and the receivers that record
logins and the desk's risk changes (kill switch, automatic execution)."""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import models
from django.dispatch import receiver
from django.http import HttpRequest

from arbsite.models import AuditEvent
from risk.signals import desk_changed

HIDDEN = "[hidden]"
# Field names whose values never enter the trail (only the fact that they changed).
_SECRET_WORDS = ("password", "secret", "key", "passphrase", "token")


def record(
    action: str,
    *,
    user=None,
    request: HttpRequest | None = None,
    obj: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
    username: str = "",
) -> AuditEvent:
    """Append one event; `user` None means the desk itself (or an unknown visitor: `username`)."""
    if user is not None and not user.is_authenticated:
        user = None
    return AuditEvent.objects.create(
        user=user,
        username=user.get_username() if user is not None else username[:150],
        action=action[:60],
        ip=client_ip(request),
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=before,
        after=after,
    )


def client_ip(request: HttpRequest | None) -> str | None:
    """The peer address as the ASGI server saw it (daphne applies trusted proxy headers)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def snapshot(obj: models.Model) -> dict[str, Any]:
    """Every concrete and many-to-many field of a saved object, as JSON-ready values."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        # An auto_now stamp changes on every save and would make every diff non-empty.
        if field.primary_key or getattr(field, "auto_now", False):
            continue
        values[field.name] = _plain(field.value_from_object(obj))
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            values[field.name] = sorted(str(related) for related in getattr(obj, field.name).all())
    return values


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict, dict]:
    """Only the fields that changed, each side masked where the field holds a secret."""
    changed = [name for name in after.keys() | before.keys() if before.get(name) != after.get(name)]
    return _masked(before, changed), _masked(after, changed)


def _masked(values: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    # A related row's field is named "listings.kraken.tick_size": its last part is the field.
    return {
        name: HIDDEN
        if any(word in name.rsplit(".", 1)[-1] for word in _SECRET_WORDS)
        else values.get(name)
        for name in sorted(names)
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class AuditedAdminMixin:
    """Put first in a ModelAdmin's bases: every add, change and delete leaves one event.

    The field-by-field diff includes many-to-many fields (and whatever `audit_snapshot` adds,
    such as the rows of an inline), so it is taken after save_related.
    """

    def audit_snapshot(self, obj: models.Model) -> dict[str, Any]:
        """The values the trail compares before and after a change."""
        return snapshot(obj)

    def save_model(self, request, obj, form, change) -> None:
        # The form has already written its values onto `obj`: read the stored row instead.
        stored = type(obj)._default_manager.filter(pk=obj.pk).first() if change else None
        form._audit_before = self.audit_snapshot(stored) if stored is not None else {}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        # Read back what was stored, so values compare in the database's own representation.
        stored = type(obj)._default_manager.get(pk=obj.pk)
        before, after = diff(getattr(form, "_audit_before", {}), self.audit_snapshot(stored))
        if change and not after:
            return
        verb = "changed" if change else "added"
        record(
            f"{obj._meta.verbose_name} {verb}",
            user=request.user,
            request=request,
            obj=obj,
            before=before if change else None,
            after=after,
        )

    def delete_model(self, request, obj) -> None:
        self._record_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self._record_delete(request, obj)
        super().delete_queryset(request, queryset)

    def _record_delete(self, request, obj) -> None:
        before, _ = diff(self.audit_snapshot(obj), {})
        record(
            f"{obj._meta.verbose_name} deleted",
            user=request.user,
            request=request,
            obj=obj,
            before=before,
        )


@receiver(user_logged_in, dispatch_uid="audit_login")
def _record_login(sender, request, user, **kwargs) -> None:
    record("login", user=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _record_login_failed(sender, credentials, request=None, **kwargs) -> None:
    record("login failed", request=request, username=str(credentials.get("username", "")))


@receiver(desk_changed, dispatch_uid="audit_desk_changed")
def _record_desk_change(sender, signal, action: str, **change) -> None:
    # Inside the change's own transaction: the event and the change commit or roll back together.
    record(action, **change)
