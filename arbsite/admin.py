"""The audit trail in the admin (read-only), and users and roles re-registered to be audited.

Importing `arbsite.audit` here also connects its login receivers in every process, since the
admin's autodiscovery imports this module at start-up.
"""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from arbsite.audit import AuditedAdminMixin, record
from arbsite.models import AuditEvent
from arbsite.readonly_admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "action", "ip", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "at"]
    search_fields = ["username", "action", "object_repr"]
    date_hierarchy = "at"


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    def user_change_password(self, request, id, form_url=""):
        """The admin setting someone's password: recorded once it is set (a redirect)."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            record("password changed", user=request.user, request=request, obj=user)
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    pass
