"""The four desk roles and the permissions each holds; each role includes the one before it."""

VIEWER, TRADER, RISK_MANAGER, ADMINISTRATOR = "Viewer", "Trader", "Risk manager", "Administrator"

_VIEW = [
    "arbsite.view_desk",
    "markets.view_exchange",
    "markets.view_market",
    "markets.view_listing",
    "risk.view_riskprofile",
    "trading.view_opportunity",
    "trading.view_trade",
    "trading.view_order",
    "trading.view_fill",
    "portfolio.view_account",
    "portfolio.view_balance",
    "portfolio.view_ledgerentry",
]
_TRADE = ["arbsite.operate_desk"]
_RISK = [
    "arbsite.view_audit",
    "arbsite.view_auditevent",
    "risk.view_killswitch",
    "risk.view_venuepause",
    "risk.add_riskprofile",
    "risk.change_riskprofile",
    "risk.delete_riskprofile",
]
_ADMIN = [
    "arbsite.view_metrics",
    # Booking an adjustment to a ledger (portfolio page), to account for a reconciled drift.
    "portfolio.add_ledgerentry",
] + [
    f"{app}.{action}_{model}"
    for app, model in [
        ("auth", "user"),
        ("auth", "group"),
        ("markets", "exchange"),
        ("markets", "market"),
        ("markets", "listing"),
        ("markets", "exchangecredential"),
    ]
    for action in ("add", "change", "delete", "view")
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: _VIEW,
    TRADER: _VIEW + _TRADE,
    RISK_MANAGER: _VIEW + _TRADE + _RISK,
    ADMINISTRATOR: _VIEW + _TRADE + _RISK + _ADMIN,
}
# Roles whose members use the Django admin.
STAFF_ROLES = {RISK_MANAGER, ADMINISTRATOR}


def create_groups(apps) -> None:
    """Create the role groups (the data migration); `sync_roles` gives them permissions."""
    group_model = apps.get_model("auth", "Group")
    for role in ROLE_PERMISSIONS:
        group_model.objects.get_or_create(name=role)


def sync_roles(apps, **kwargs) -> None:
    """Set exactly each role's permissions; runs after every migrate, when all models exist."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():  # apps later in INSTALLED_APPS have none yet
        create_permissions(app_config, verbosity=0)
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = [tuple(name.split(".", 1)) for name in names]
        permissions = [
            permission_model.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in wanted
        ]
        group.permissions.set(permissions)
