"""The user's page preferences: the theme and the clock, chosen in the header's form."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from arbsite.models import Preferences


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = Preferences
        fields = ["theme", "clock"]


@require_POST
@login_required
def preferences(request):
    """Keep the choice on the user and go back to the page it was made on."""
    form = PreferencesForm(request.POST, instance=Preferences.of(request.user))
    if form.is_valid():
        form.save()
    else:
        messages.error(request, "That is not one of the choices; nothing was changed.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = "dashboard"
    return redirect(back)
