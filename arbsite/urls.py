"""The site's URLs: auth, the desk pages, admin and health."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView

from arbsite import metrics as site_metrics
from arbsite import views as site_views
from arbsite.pages import (
    controls,
    dashboard,
    market,
    opportunities,
    portfolio,
    preferences,
    reports,
    trades,
)

admin.site.site_header = "Arbitrage desk administration"
admin.site.site_title = "Arbitrage desk"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("markets/<str:symbol>/", market.market_detail, name="market_detail"),
    path("opportunities/", opportunities.opportunities, name="opportunities"),
    path("opportunities/<int:pk>/", opportunities.opportunity_detail, name="opportunity_detail"),
    path("opportunities/<int:pk>/execute/", opportunities.execute, name="execute"),
    path("trades/", trades.trades, name="trades"),
    path("trades/<int:pk>/residual/", trades.residual, name="trade_residual"),
    path("reports/", reports.reports, name="reports"),
    path("reports/trades.csv", reports.trades_csv, name="reports_trades_csv"),
    path("reports/exports/", reports.create_export, name="export_create"),
    path("reports/exports/<int:pk>/", reports.export_status, name="export_status"),
    path("reports/exports/<int:pk>/file", reports.export_download, name="export_download"),
    path("portfolio/", portfolio.portfolio, name="portfolio"),
    path("portfolio/adjust/", portfolio.adjustment, name="portfolio_adjust"),
    path("preferences/", preferences.preferences, name="preferences"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("login/code/", site_views.second_factor, name="second_factor"),
    path("login/enrol/", site_views.second_factor_enrol, name="second_factor_enrol"),
    path("login/recovery-codes/", site_views.recovery_codes, name="recovery_codes"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", site_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"
    ),
    path("risk/", include(controls)),
    path("audit/", include("arbsite.audit_views")),
    path("healthz", site_views.healthz, name="healthz"),
    path("metrics", site_metrics.metrics, name="metrics"),
    # The admin's own password page would bypass the audited one.
    path("admin/password_change/", RedirectView.as_view(url=reverse_lazy("password_change"))),
    path("admin/", admin.site.urls),
]
