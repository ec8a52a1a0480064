"""The one place where Tunelab reads its environment.

Every setting a deployment may change is read here, with the laptop default beside it.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


# Everything the platform writes (SQLite file, media, the server-less broker's queue) lives here.
DATA_DIR = Path(env_str("TUNELAB_DATA_DIR", str(REPO_ROOT / "var"))).resolve()
DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
DEBUG = env_bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
_hosts = env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
ALLOWED_HOSTS = [host for host in _hosts.split(",") if host]
MEDIA_ROOT = Path(env_str("TUNELAB_MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
# nginx sends media files itself once the media view has checked who asks (X-Accel-Redirect).
MEDIA_ACCEL = env_bool("TUNELAB_MEDIA_ACCEL", default=False)
# The site is reached over HTTPS only, through a proxy that terminates TLS and says so in
# X-Forwarded-Proto: secure cookies, HSTS for HSTS_SECONDS, plain HTTP redirected.
HTTPS = env_bool("DJANGO_HTTPS", default=False)
HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
CELERY_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
