"""Real Celery worker processes for the integration tests.

A worker is `celery -A config worker -Q gpu --pool solo`, started as its own process group on
the Redis broker (REDIS_URL) and pointed at the test database (DATABASE_URL with the test
database's name) and the test's MEDIA_ROOT. The tests need PostgreSQL (two processes share the
database; SQLite's test database lives in the test process's memory) and a Redis that answers;
without either they are skipped with the reason.

`start_worker()` returns a `Worker` of queue `gpu` (`start_worker(queues="default,gpu")` takes
the CPU jobs too, as `make run`'s worker does) whose `kill()` is kill -9 of its process group;
every worker a test started is stopped when the test ends, before the test database is flushed.
The platform tests' user and client fixtures live in tests/platform/conftest.py, out of reach
from here: `project_admin` and `admin_api` are their equivalents.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from config.celery import app as celery_app
from tests.integration.workers import HEARTBEAT_S, STALE_S, Worker

REPO = Path(__file__).resolve().parents[2]


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def live_services() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): the worker process must share the "
                    "test database")
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis"):
        pytest.skip("needs Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    if not _redis_answers(broker):
        pytest.skip(f"Redis at {broker} does not answer")


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def start_worker(live_services, transactional_db, tmp_path) -> Iterator[Callable[..., Worker]]:
    with celery_app.connection_for_write() as conn:
        for queue in ("default", "gpu"):  # messages left by earlier sessions
            conn.default_channel.queue_purge(queue)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "TUNELAB_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "TUNELAB_RUN_HEARTBEAT_S": str(HEARTBEAT_S),
        "TUNELAB_RUN_STALE_S": str(STALE_S),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "platform")]),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    workers: list[Worker] = []

    def start(queues: str = "gpu") -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
             "--pool", "solo", "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--without-gossip",
             "--without-mingle", "--loglevel", "INFO"],
            cwd=REPO / "platform", env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        workers.append(Worker(process, log))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def project_admin(transactional_db):
    return get_user_model().objects.create_user(username="project-admin", password="x" * 12)


@pytest.fixture
def admin_api(project_admin) -> APIClient:
    client = APIClient()
    client.force_authenticate(project_admin)
    return client
