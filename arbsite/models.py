"""Desk-wide permissions that belong to no single model, and the append-only audit trail."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class Desk(models.Model):
    """Holds the desk's own permissions; it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_desk", "Can read the desk pages"),
            ("operate_desk", "Can switch automatic execution and the kill switch, execute by hand"),
            ("view_audit", "Can read the audit trail"),
            ("view_metrics", "Can read the site's Prometheus metrics"),
        ]

    def __str__(self) -> str:
        return "desk"


class AppendOnlyError(Exception):
    """An attempt to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are append-only.")

    def delete(self):
        raise AppendOnlyError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One thing someone (or the desk itself) did: append-only, written by arbsite.audit.record."""

    at = models.DateTimeField("when", default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as written: the user may be renamed or deleted, and a failed login names no user.
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=60)
    ip = models.GenericIPAddressField("from", null=True, blank=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField("object", max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        # Nobody may add, change or delete through the admin; reading is the only permission.
        default_permissions = ("view",)
        indexes = [
            # The audit page: newest first, optionally filtered by action or user.
            models.Index(fields=["-at"], name="audit_at"),
            models.Index(fields=["action", "-at"], name="audit_action_at"),
            models.Index(fields=["user", "-at"], name="audit_user_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are append-only.")


class Preferences(models.Model):
    """One user's choices of how the pages look: the theme, and the clock times are shown in."""

    class Theme(models.TextChoices):
        AUTO = "auto", "As the system"
        LIGHT = "light", "Light"
        DARK = "dark", "Dark"

    class Clock(models.TextChoices):
        UTC = "utc", "UTC"
        LOCAL = "local", "Local time"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    theme = models.CharField(max_length=5, choices=Theme.choices, default=Theme.AUTO)
    clock = models.CharField(max_length=5, choices=Clock.choices, default=Clock.UTC)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"{self.user}: {self.theme}, {self.clock}"

    @classmethod
    def of(cls, user) -> "Preferences":
        """`user`'s choices; the defaults (unsaved) for anyone who has made none."""
        if not user.is_authenticated:
            return cls()
        return cls.objects.filter(user=user).first() or cls(user=user)
