"""The life of a background job, shared by tuning runs and reward-model trainings.

A job row is queued, a Celery worker claims it (running), beats its heartbeat from a thread while
it works, and ends it (succeeded, failed; an admin may cancel it). A worker that dies stops
beating: the reaper requeues its running jobs, and the next worker that claims one starts it
again (a tuning run resumes from its checkpoint). The apps keep their own services around these
functions (their names, what success records); only the lifecycle lives here.
"""

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from config.celery import app as celery_app


class JobStatus(models.TextChoices):
    """Life of a background job (reward-model training, tuning run)."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """The fields the lifecycle functions below read and write."""

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    worker = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


J = TypeVar("J", bound=Job)


def worker_name() -> str:
    """Host and process: a restarted worker on the same host is a different worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def job_enqueue(task: str, job_id: int) -> None:
    """Send the job's task by name once the transaction commits, so a worker never sees a row
    that was rolled back (and this module needs no Celery task module)."""
    transaction.on_commit(lambda: celery_app.send_task(task, args=[job_id]))


@transaction.atomic
def job_claim(model: type[J], *, pk: int, worker: str, stale_after: timedelta) -> J | None:
    """Mark the job as this worker's, or None when there is nothing to do: the job is gone or
    finished, or another worker is alive on it (a message delivered twice)."""
    job = model._default_manager.select_for_update().filter(pk=pk).first()
    now = timezone.now()
    if job is None or job.status in FINISHED:
        return None
    if (job.status == JobStatus.RUNNING and job.worker != worker
            and job.heartbeat_at is not None and job.heartbeat_at > now - stale_after):
        return None
    job.status = JobStatus.RUNNING
    job.worker = worker
    job.attempts += 1
    job.heartbeat_at = now
    job.save(update_fields=["status", "worker", "attempts", "heartbeat_at"])
    return job


def job_heartbeat(model: type[Job], *, pk: int, worker: str) -> bool:
    """Say this worker is alive on the job; False when it no longer owns it."""
    return bool(model._default_manager.filter(pk=pk, worker=worker, status=JobStatus.RUNNING)
                .update(heartbeat_at=timezone.now()))


@transaction.atomic
def job_fail(model: type[Job], *, pk: int, worker: str, error: str) -> None:
    """Record why the job failed (only while this worker owns it)."""
    model._default_manager.filter(pk=pk, worker=worker, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, error=error, finished_at=timezone.now()
    )


@transaction.atomic
def jobs_reap_stale(
    model: type[Job], *, stale_after: timedelta, enqueue: Callable[[int], None],
    now: datetime | None = None,
) -> list[int]:
    """Requeue running jobs whose worker stopped beating (killed, machine lost) and `enqueue`
    each id again. Rows another reaper holds are skipped, not waited for. Returns the ids."""
    now = now or timezone.now()
    stale = model._default_manager.select_for_update(skip_locked=True).filter(
        Q(heartbeat_at__lt=now - stale_after) | Q(heartbeat_at__isnull=True),
        status=JobStatus.RUNNING,
    )
    reaped = []
    for job in stale:
        job.status = JobStatus.QUEUED
        job.worker = ""
        job.save(update_fields=["status", "worker"])
        enqueue(job.pk)
        reaped.append(job.pk)
    return reaped


@contextmanager
def beating(beat: Callable[[], bool], every_s: float | None, name: str) -> Iterator[None]:
    """Call `beat()` every `every_s` seconds from a thread inside the block (never when
    `every_s` is falsy), independent of how long one training step takes; it stops early when
    `beat()` returns False (the job is no longer this worker's). The thread dies with the
    worker process, which is what lets the reaper tell a slow job from a dead worker."""
    if not every_s:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.wait(every_s) and beat():
                pass
        finally:
            connection.close()  # this thread's own database connection

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
