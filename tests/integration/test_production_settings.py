"""The production settings pass Django's deployment checklist (`manage.py check --deploy`)
when the site says it is behind TLS, and keep plain-HTTP logins working when it does not."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process, with only the environment given here (and the basics)."""
    kept = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    environment = {**kept, "TUNELAB_DATA_DIR": str(tmp_path),
                   "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), **env}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_behind_tls(tmp_path):
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING",
                     DJANGO_DEBUG="0", DJANGO_HTTPS="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_over_plain_http_cookies_are_not_secure(tmp_path):
    """Browsers drop Secure cookies over HTTP: nobody could log in to a plain-HTTP site."""
    show = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
            "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS)")
    plain = _manage(tmp_path, "shell", "--no-imports", "-c", show, DJANGO_DEBUG="0")
    assert plain.stdout.splitlines()[-1].split() == ["False", "False", "False", "0"], plain.stderr
    tls = _manage(tmp_path, "shell", "--no-imports", "-c", show, DJANGO_DEBUG="0", DJANGO_HTTPS="1")
    assert tls.stdout.splitlines()[-1].split() == ["True", "True", "True", "31536000"], tls.stderr
