"""Desk-wide permissions that belong to no single model."""

from django.db import models


class Desk(models.Model):
    """Holds the desk's own permissions; it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_desk", "Can read the desk pages"),
            ("operate_desk", "Can switch automatic execution and the kill switch, execute by hand"),
            ("view_audit", "Can read the audit trail"),
        ]

    def __str__(self) -> str:
        return "desk"
