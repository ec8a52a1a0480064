"""The life of a background job, shared by tuning runs and reward-model trainings.

A job row is queued, a Celery worker claims it (running), beats its heartbeat from a thread while
it works, and ends it (succeeded, failed; an admin may cancel it): `job_run` is that whole life,
around the body each kind of job gives it. A worker that dies stops beating: the reaper requeues
its running jobs, and the next worker that claims one starts it again (a tuning run resumes from
its checkpoint). A worker on the same host whose process is gone is known dead at once, so a
redelivered message is taken over without waiting for the heartbeat to go stale. A job whose
worker died `MAX_DEATHS` times (a run that runs its worker out of memory) is failed with that
reason instead of killing workers for ever. The apps keep their own services around these
functions (their names, what success records); only the lifecycle lives here.
"""

import functools
import logging
import os
import socket
import threading
import traceback
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
    deaths = models.PositiveIntegerField(
        default=0, help_text="Attempts whose worker died (requeued, or taken over at a claim).")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


J = TypeVar("J", bound=Job)
R = TypeVar("R")

logger = logging.getLogger(__name__)

# Workers a job may see die before it is failed rather than tried again.
MAX_DEATHS = 2


class JobStopped(Exception):
    """The job must stop quietly: an admin cancelled it, or the reaper gave it to another
    worker while this one was presumed dead."""


def worker_name() -> str:
    """Host and process: a restarted worker on the same host is a different worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _known_dead(worker: str) -> bool:
    """Whether `worker` ran on this host in a process that no longer exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


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
    if job.status == JobStatus.RUNNING and job.worker != worker:
        if (job.heartbeat_at is not None and job.heartbeat_at > now - stale_after
                and not _known_dead(job.worker)):
            return None
        job.deaths += 1  # its worker died without the reaper noticing yet
    if job.deaths >= MAX_DEATHS:
        job.status = JobStatus.FAILED
        job.error = (f"Its worker process died {job.deaths} times while running it (last "
                     f"{job.worker or 'a worker'}): out of memory, or killed. Not tried again; "
                     "retry it to try once more.")
        job.finished_at = now
        job.save(update_fields=["status", "error", "deaths", "finished_at"])
        return None
    job.status = JobStatus.RUNNING
    job.worker = worker
    job.attempts += 1
    job.heartbeat_at = now
    job.started_at = job.started_at or now  # when the first attempt began
    job.save(update_fields=["status", "worker", "attempts", "deaths", "heartbeat_at",
                            "started_at"])
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
        job.deaths += 1
        job.save(update_fields=["status", "worker", "deaths"])
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


def job_error_text(error: BaseException) -> str:
    """What a failed job records: the error and the last frames of its traceback."""
    detail = "".join(traceback.format_exception(error, limit=-3))
    return f"{type(error).__name__}: {error}\n\n{detail}"


def job_run(
    model: type[J], *, pk: int, worker: str, heartbeat_s: float | None,
    stale_after: timedelta, work: Callable[[J], R], succeed: Callable[[J, R], None],
) -> None:
    """The whole life of one job on this worker: claim it (nothing to do when it is gone,
    finished or another live worker's), beat its heartbeat while `work(job)` runs, then
    `succeed(job, result)`; a `JobStopped` ends it quietly, any other error is recorded on the
    job (the worker lives on)."""
    job = job_claim(model, pk=pk, worker=worker, stale_after=stale_after)
    name = f"{model._meta.verbose_name} {pk}"
    if job is None:
        logger.info("%s: nothing to do for %s", name, worker)
        return
    alive = functools.partial(job_heartbeat, model, pk=pk, worker=worker)
    try:
        with beating(alive, heartbeat_s, name=f"heartbeat-{model._meta.model_name}-{pk}"):
            result = work(job)
        succeed(job, result)
    except JobStopped as stop:
        logger.info("%s: %s stops (%s)", name, worker, type(stop).__name__)
    except Exception as error:  # any failure of the job is recorded on it, the worker lives on
        logger.exception("%s failed", name)
        job_fail(model, pk=pk, worker=worker, error=job_error_text(error))


def reap_every(every_s: float, reap: Callable[[], object]) -> threading.Event:
    """Call `reap()` every `every_s` seconds from a daemon thread, so a worker requeues dead
    workers' jobs where no beat scheduler runs; set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            try:
                reap()
            except Exception:  # a database hiccup must not end the timer
                logger.exception("reaping stale jobs failed")
            finally:
                connection.close()

    threading.Thread(target=loop, name="job-reaper", daemon=True).start()
    return stop
