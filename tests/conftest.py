"""Shared fixtures: users per role. Imports Django lazily so pure tests run without it."""

import pytest


@pytest.fixture
def user_with_role(db):
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    def make(role: str | None):
        user = UserFactory()
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture(autouse=True)
def fast_password_hashing(request):
    if request.config.pluginmanager.hasplugin("django"):
        settings = request.getfixturevalue("settings")
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
