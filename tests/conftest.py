"""Shared fixtures: users per role, demo data."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from arbsite.roles import ROLE_PERMISSIONS, sync_roles
from tests.factories import UserFactory

ROLES = list(ROLE_PERMISSIONS)


@pytest.fixture
def user_with_role(db):
    if not Group.objects.exists():  # transactional tests flush what the migrations created
        sync_roles(apps)

    def make(role: str | None):
        user = UserFactory()
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
