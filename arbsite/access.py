"""Access checks for pages and pushes: login first, then a named permission (never a group name)."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

VIEW_PERM, OPERATE_PERM = "arbsite.view_desk", "arbsite.operate_desk"
# Who sees the desk's trades, one by one (pages, exports, pushes, notifications); totals and PnL
# go with the desk itself.
TRADES_PERM = "trading.view_trade"
# The two audiences a page or push is rendered for: the controls show only to the second.
VIEW, OPERATE = "view", "operate"


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


desk_view = require_permission(VIEW_PERM)
trades_view = require_permission(TRADES_PERM)


def audience(user) -> str:
    """OPERATE for users who may use the desk's controls, VIEW for the rest."""
    return OPERATE if user.has_perm(OPERATE_PERM) else VIEW
