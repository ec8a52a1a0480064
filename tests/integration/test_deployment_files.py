"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the services the
README promises, each configured by environment, the GPU worker on the queue the tuning and
reward-model tasks are routed to, and one media volume shared by everything that writes it."""

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
TUNELAB_SERVICES = ("web", "worker", "gpu-worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _queue(command: list[str]) -> str:
    return command[command.index("-Q") + 1]


def test_all_services_are_there_and_configured_by_environment(compose):
    services = compose["services"]
    assert {"postgres", "redis", "web", "proxy", *TUNELAB_SERVICES} <= set(services)
    for name in TUNELAB_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env[
            "DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379/")
        assert env["DJANGO_DEBUG"] == "0" and "DJANGO_SECRET_KEY" in env
        assert "media:/data/media" in services[name]["volumes"]
        assert env["TUNELAB_MEDIA_ROOT"] == "/data/media"
    # No secret in the file: the passwords come from the environment.
    assert "${POSTGRES_PASSWORD:?" in (REPO / "docker-compose.yml").read_text()


def test_web_migrates_and_serves_with_gunicorn(compose):
    command = compose["services"]["web"]["command"]
    assert command.index("migrate") < command.index("gunicorn config.wsgi")


def test_gpu_worker_takes_the_training_tasks_one_at_a_time_on_a_reserved_gpu(compose):
    gpu, cpu = compose["services"]["gpu-worker"], compose["services"]["worker"]
    queue = _queue(gpu["command"])
    for task in ("tuning.run_execute", "rewards.train"):
        assert settings.CELERY_TASK_ROUTES[task]["queue"] == queue
    assert gpu["command"][gpu["command"].index("--concurrency") + 1] == "1"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert _queue(cpu["command"]) == settings.CELERY_TASK_DEFAULT_QUEUE
    assert "beat" in compose["services"]["beat"]["command"]


def test_nginx_serves_media_only_when_the_web_server_says_so(compose):
    """No public location maps /media/ to the files: /media/ is proxied to the media view,
    whose X-Accel-Redirect names nginx's internal location."""
    from common.media import ACCEL_PREFIX

    nginx = compose["configs"]["nginx"]["content"]
    locations = dict(re.findall(r"location (\S+) \{([^}]*)\}", nginx))
    assert "/media/" not in locations
    assert "internal;" in locations[ACCEL_PREFIX]
    assert "alias /srv/media/;" in locations[ACCEL_PREFIX]
    assert "proxy_pass http://web:8000;" in locations["/"]
    web = compose["services"]["web"]
    assert web["environment"]["TUNELAB_MEDIA_ACCEL"] == "1"
    assert "media:/srv/media:ro" in compose["services"]["proxy"]["volumes"]


def test_https_is_a_setting_and_the_health_check_passes_its_redirect(compose):
    web = compose["services"]["web"]
    assert web["environment"]["DJANGO_HTTPS"] == "${DJANGO_HTTPS:-0}"
    assert "'X-Forwarded-Proto': 'https'" in " ".join(web["healthcheck"]["test"])


def test_the_image_pins_torch_as_the_makefile_does():
    pin = re.compile(r"torch==([\d.]+)")
    dockerfile = (REPO / "Dockerfile").read_text()
    assert pin.search(dockerfile)[1] == pin.search((REPO / "Makefile").read_text())[1]
    assert "PYTHONPATH=/app/platform" in dockerfile


def test_gunicorn_workers_freeze_the_loaded_app_out_of_the_garbage_collector():
    """A full collection walking the app's long-lived objects stopped a worker's threads for
    130-160 ms (the answer benchmark's p99); the hook loads the views and freezes them all."""
    import gc

    conf: dict = {}
    exec((REPO / "scripts" / "gunicorn.conf.py").read_text(), conf)
    gc.unfreeze()
    try:
        tracked = len(gc.get_objects())
        conf["post_worker_init"](worker=None)
        assert gc.get_freeze_count() >= tracked > 10_000
        assert len(gc.get_objects()) < tracked / 10
    finally:
        gc.unfreeze()
