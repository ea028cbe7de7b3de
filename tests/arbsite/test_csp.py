"""The Content-Security-Policy every answer carries."""

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("directive", ["base-uri 'none'", "object-src 'none'"])
def test_csp_forbids_base_and_object_elements(client, directive):
    policy = client.get("/login/")["Content-Security-Policy"]

    assert directive in [part.strip() for part in policy.split(";")]
