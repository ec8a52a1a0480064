"""Benchmark: answers submitted over HTTP by concurrent annotators, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tunelab .venv/bin/python bench/answers.py

Builds a fresh database (`<name>_answers_bench` beside the one DATABASE_URL names; dropped
first), one 1-5 scale project with enough tasks for the run (overlap 3) and one annotator per
client, serves the app with gunicorn on 127.0.0.1 (scripts/gunicorn.conf.py), and lets every
client (a thread with one keep-alive connection) ask for its first task and then loop over POST
answer (token auth, a fresh idempotency key each time), each answer's reply carrying the next
task, for `--seconds` after `--warmup`. By default the clients send as fast as they are
answered; with `--rate` they send on a fixed schedule that adds up to that many answers/s, and
latency is counted from the scheduled moment (a late reply delays what follows, and that wait
counts). Reports answers/s over the measured window, p50/p99 latency, CPU per answer of
gunicorn, PostgreSQL and the load generator, and checks afterwards that the database holds
exactly as many ratings as 201 answers were given, none over a task's overlap and none twice by
one annotator. Server, PostgreSQL and load generator share the machine's cores.
"""

import argparse
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

REPO = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO / "scripts" / "gunicorn.conf.py"
sys.path.insert(0, str(REPO / "platform"))
sys.path.insert(0, str(REPO))


@dataclass
class ClientStats:
    next_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    answered_in_window: int = 0
    answered_total: int = 0
    replays: int = 0
    other: dict[int, int] = field(default_factory=dict)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent annotators")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured start")
    parser.add_argument("--workers", type=int, help="gunicorn worker processes "
                        f"(default: {GUNICORN_CONF.relative_to(REPO)})")
    parser.add_argument("--worker-class", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, help="threads per gthread worker")
    parser.add_argument("--items", type=int, default=4000,
                        help="items (x2 candidates x overlap 3 = answer slots)")
    parser.add_argument("--rate", type=float,
                        help="answers/s of all clients together, on a fixed schedule "
                             "(default: as fast as answered)")
    parser.add_argument("--port", type=int, default=8931)
    return parser.parse_args()


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/answers.py needs DATABASE_URL=postgres://... (the targets are for "
                 "PostgreSQL)")
    parsed = urlparse(url)
    name = parsed.path.lstrip("/") or "tunelab"
    return urlunparse(parsed._replace(path=f"/{name}_answers_bench"))


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = urlunparse(parsed._replace(path="/postgres"))
    name = parsed.path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def build_project(args: argparse.Namespace) -> tuple[int, list[str]]:
    """A scale project with `items` x 2 candidates, overlap 3, and one token per client."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from PIL import Image
    from rest_framework.authtoken.models import Token

    from labeling.models import Task, TaskCandidate
    from labeling.services.task_creation import tasks_create
    from projects.models import Candidate, Item, Role
    from projects.services import (
        item_create,
        membership_set,
        model_version_get_or_create,
        project_create,
    )

    call_command("migrate", verbosity=0)
    project = project_create(name="bench", task="detection", rating_mode="scale", overlap=3)
    versions = [model_version_get_or_create(project=project, name=f"m{i}") for i in range(2)]
    # One real image through the service; the rest share its file (bulk rows, as a factory).
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 200)).save(buffer, format="PNG")
    first = item_create(project=project, file_name="bench_00000.png", image=buffer.getvalue())
    Item.objects.bulk_create(
        [Item(project=project, file_name=f"bench_{i:05d}.png", image=first.image.name,
              width=64, height=64) for i in range(1, args.items)],
        batch_size=2000,
    )
    output = {"objects": [{"bbox": [4, 4, 20, 20], "category_id": 1, "score": 0.9}]}
    Candidate.objects.bulk_create(
        [Candidate(item_id=item_id, model_version=version, output=output)
         for item_id in Item.objects.filter(project=project).values_list("id", flat=True)
         for version in versions],
        batch_size=2000,
    )
    tasks_create(project=project)
    tokens = []
    for i in range(args.clients):
        user = get_user_model().objects.create_user(username=f"annotator{i}")
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
        tokens.append(Token.objects.create(user=user).key)
    # Settle the bulk load as a live server would have long before (pgbench vacuums before its
    # runs too): statistics and visibility maps (else autovacuum starts on the fresh tables
    # mid-run), and a checkpoint (CREATE DATABASE and the load leave one due, and the full-page
    # images written after it would land in the measured window's commits). Only the loaded
    # tables: analysed while empty, the tables the answers fill (assignments, ratings) would be
    # recorded as empty, and the plans each server connection caches in its first second
    # would scan them whole for the rest of the run (a live server has them analysed with rows
    # in them, a fresh install not at all; both give index plans).
    loaded = [model._meta.db_table for model in (Item, Candidate, Task, TaskCandidate)]
    with connections["default"].cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(loaded)}")
        cursor.execute("CHECKPOINT")
    project_id = project.pk
    connections.close_all()
    return project_id, tokens


def start_server(args: argparse.Namespace, env: dict) -> subprocess.Popen:
    command = [
        str(REPO / ".venv" / "bin" / "gunicorn"), "config.wsgi", "-c", str(GUNICORN_CONF),
        "--chdir", str(REPO / "platform"), "--bind", f"127.0.0.1:{args.port}",
        "--log-level", "warning",
    ]
    for flag, value in (("--workers", args.workers), ("--worker-class", args.worker_class),
                        ("--threads", args.threads)):
        if value is not None:
            command += [flag, str(value)]
    server = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
            conn.request("GET", "/api/projects/")
            if conn.getresponse().status == 401:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    sys.exit("gunicorn did not start")


def server_description(args: argparse.Namespace) -> str:
    """gunicorn's processes and threads as run: the flags given, else the config file's."""
    conf: dict = {}
    exec(GUNICORN_CONF.read_text(), conf)  # plain assignments (and os.environ)
    workers = args.workers or conf["workers"]
    worker_class = args.worker_class or conf["worker_class"]
    threads = args.threads or conf["threads"]
    return f"gunicorn {workers} x {worker_class}" + (
        f" ({threads} threads)" if worker_class == "gthread" else "")


def run_client(port: int, token: str, project_id: int, start: float, window: tuple[float, float],
               stats: ClientStats, interval: float | None = None) -> None:
    """One annotator. With `interval`, answer k is due at start + k * interval and its latency
    is counted from then."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    _, stop = window

    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, (time.perf_counter() - t0) * 1000

    task_id = None  # the task leased to this client, carried by the last answer's response
    due = start
    while time.perf_counter() < stop:
        if task_id is None:
            status, data, ms = call("GET", f"/api/projects/{project_id}/next-task/")
            if window[0] <= time.perf_counter() < stop:
                stats.next_ms.append(ms)
            if status == 204:
                break
            if status != 200:
                stats.other[status] = stats.other.get(status, 0) + 1
                continue
            task_id = json.loads(data)["id"]
        body = json.dumps({"answer": {"score": 1 + task_id % 5},
                           "idempotency_key": str(uuid.uuid4()), "time_spent_ms": 900}).encode()
        late_ms = 0.0
        if interval is not None:
            due += interval
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            late_ms = max(0.0, time.perf_counter() - due) * 1000
        status, data, ms = call("POST", f"/api/tasks/{task_id}/answer/", body)
        ms += late_ms
        measured = window[0] <= time.perf_counter() < stop
        if status == 201:
            stats.answered_total += 1
            if measured:
                stats.answered_in_window += 1
                stats.answer_ms.append(ms)
            next_task = json.loads(data)["next_task"]
            task_id = None if next_task is None else next_task["id"]
        else:
            stats.other[status] = stats.other.get(status, 0) + 1
            task_id = None
    conn.close()


def other_database_backend(pid: int, database: str) -> bool:
    """A PostgreSQL backend serving a client of another database (e.g. a test session beside
    the bench): its title is `postgres: [cluster: ]user database host(port) state`."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    words = title.replace("\0", " ").split()
    return "(" in title and database not in words


def cpu_seconds(match) -> float:
    """User + system CPU seconds of the processes whose (pid, ppid, name) `match` accepts."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        if match(int(stat.parent.name), int(fields[1]), name):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile in ms, rounded to 0.1; None without values."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None


def verify(answered: int) -> dict:
    from django.db import connections
    from django.db.models import Count, F

    from labeling.models import Rating, Task

    stored = Rating.objects.count()
    over = Task.objects.filter(answer_count__gt=F("answers_needed")).count()
    mismatched = Task.objects.annotate(n=Count("ratings")).exclude(n=F("answer_count")).count()
    twice = (Rating.objects.values("task", "annotator").annotate(n=Count("id"))
             .filter(n__gt=1).count())
    connections.close_all()
    return {"ratings_stored": stored, "answers_201": answered, "tasks_over_overlap": over,
            "tasks_count_mismatch": mismatched, "answered_twice": twice}


def main() -> None:
    args = parse_args()
    url = bench_database_url()
    recreate_database(url)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": "bench-only-" + uuid.uuid4().hex,
           "DJANGO_SETTINGS_MODULE": "config.settings", "TUNELAB_DATA_DIR": "/tmp/tunelab-bench"}
    os.environ.update(env)
    project_id, tokens = build_project(args)
    server = start_server(args, env)
    try:
        stats = [ClientStats() for _ in tokens]
        server_cpu = lambda: cpu_seconds(  # noqa: E731
            lambda pid, ppid, _: server.pid in (pid, ppid))
        # The bench database's backends and the shared background processes (WAL writer,
        # checkpointer), not other databases' backends.
        database = urlparse(url).path.lstrip("/")
        postgres_cpu = lambda: cpu_seconds(  # noqa: E731
            lambda pid, _, name: name == "postgres" and not other_database_backend(pid, database))
        cpu_before = (server_cpu(), postgres_cpu(), time.process_time())
        start = time.perf_counter()
        window = (start + args.warmup, start + args.warmup + args.seconds)
        interval = None if args.rate is None else len(tokens) / args.rate
        threads = [
            threading.Thread(target=run_client,
                             args=(args.port, token, project_id,
                                   # Clients spread evenly over one interval.
                                   start + (interval or 0) * i / len(tokens), window, s,
                                   interval))
            for i, (token, s) in enumerate(zip(tokens, stats, strict=True))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu_after = (server_cpu(), postgres_cpu(), time.process_time())
    finally:
        server.terminate()
        server.wait(timeout=30)
    answers = [ms for s in stats for ms in s.answer_ms]
    nexts = [ms for s in stats for ms in s.next_ms]
    both = answers + nexts
    report = {
        "clients": args.clients, "server": server_description(args),
        "seconds": args.seconds, "rate": args.rate,
        "answers_per_s": round(sum(s.answered_in_window for s in stats) / args.seconds, 1),
        "answer_p50_ms": percentile(answers, 0.5),
        "answer_p99_ms": percentile(answers, 0.99),
        "next_task_p50_ms": percentile(nexts, 0.5),
        "next_task_p99_ms": percentile(nexts, 0.99),
        "all_requests_p99_ms": percentile(both, 0.99),
        "non_2xx": {str(k): v for s in stats for k, v in s.other.items()},
        # CPU per answer (next-task + answer), whatever else shares the machine.
        **{f"cpu_ms_per_answer_{part}": round(
            (after - before) * 1000 / max(1, sum(s.answered_total for s in stats)), 2)
           for part, before, after in zip(("django", "postgres", "load_generator"),
                                          cpu_before, cpu_after, strict=True)},
        **verify(sum(s.answered_total for s in stats)),
    }
    print(json.dumps(report, indent=2))
    ok = (report["ratings_stored"] == report["answers_201"]
          and not report["tasks_over_overlap"] and not report["answered_twice"]
          and not report["tasks_count_mismatch"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
