"""The desk's risk controls under /risk/."""

from django.urls import path

from risk import views

app_name = "risk"
urlpatterns = [
    path("kill-switch/", views.kill_switch, name="kill_switch"),
    path("kill-switch/reset/", views.kill_switch_reset, name="kill_switch_reset"),
    path("auto-execution/", views.auto_execution, name="auto_execution"),
]
