"""Access checks for views: login first, then a named permission (never a group name)."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def require_permission(perm: str) -> Callable:
    """Anonymous users go to the login page; users without `perm` get 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def checked(request, *args, **kwargs):
            if not request.user.has_perm(perm):
                raise PermissionDenied(f"Your role does not include {perm}.")
            return view(request, *args, **kwargs)

        return login_required(checked)

    return decorator


desk_view = require_permission("arbsite.view_desk")
