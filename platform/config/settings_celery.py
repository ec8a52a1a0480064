"""Celery settings: Redis with REDIS_URL, otherwise kombu's filesystem transport, a broker that
needs no server but is still consumed by a real worker process."""

from config import env

if env.REDIS_URL:
    CELERY_BROKER_URL = env.REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    _queue_dir = env.DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "store_processed": False,
        # Broadcast (control) messages; kombu's default is a folder in the working directory.
        "control_folder": str(_queue_dir / "control"),
    }

# Task state lives in Tunelab's own tables (runs, reward models), so no result backend is needed.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.CELERY_EAGER
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"

# Training runs on GPU workers (`celery -A config worker -Q gpu --concurrency 1`).
CELERY_TASK_ROUTES = {
    "tuning.run_execute": {"queue": "gpu"},
    "rewards.train": {"queue": "gpu"},
    "tuning.generate_candidates": {"queue": "gpu"},
}
# A running tuning run's worker beats every TUNELAB_RUN_HEARTBEAT_S; the reaper requeues a run
# silent for TUNELAB_RUN_STALE_S (at worker start and on this beat schedule).
TUNELAB_RUN_HEARTBEAT_S = env.env_int("TUNELAB_RUN_HEARTBEAT_S", 15)
TUNELAB_RUN_STALE_S = env.env_int("TUNELAB_RUN_STALE_S", 120)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-tuning-runs": {"task": "tuning.reap_stale_runs", "schedule": 60.0},
}
