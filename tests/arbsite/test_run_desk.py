"""make run's banner: the URL, one demo login per role, and who will be asked for a code."""

from io import StringIO

from arbsite.management.commands.run_desk import Command


def test_the_banner_names_the_url_every_demo_login_and_the_second_factor(settings):
    settings.OTP_REQUIRED_ROLES = ["Trader", "Risk manager", "Administrator"]
    out = StringIO()

    Command(stdout=out).print_banner("127.0.0.1", 8000)

    text = out.getvalue()
    assert "http://127.0.0.1:8000/" in text
    for user in ("viewer", "trader", "risk", "admin"):
        assert f"  {user:<8} " in text
    assert "trader, risk, admin log in with a second factor" in text
    assert "viewer with the password alone." in text
