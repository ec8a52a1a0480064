"""Database settings: SQLite under TUNELAB_DATA_DIR by default, anything dj-database-url reads
from DATABASE_URL (PostgreSQL in production)."""

import dj_database_url

from config import env

if env.DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(env.DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The annotation queue's statements bind server-side and are prepared after this many
        # runs on a connection (labeling/queue_sql.py); the ORM binds client-side and never
        # prepares. Behind a pooler in transaction mode, set it to None (never prepare).
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
else:
    env.DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.DATA_DIR / "tunelab.sqlite3",
            # A real worker process writes beside the web server: wait for locks, don't fail.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # A file, not Django's shared-cache in-memory default: browser tests' live server
            # thread then waits for the test's locks (timeout) instead of failing with "table
            # is locked".
            "TEST": {"NAME": env.DATA_DIR / "test.sqlite3"},
        }
    }
