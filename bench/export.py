"""Benchmark of the export: JSONL (and CSV) of a million ratings through a real HTTP server.

    .venv/bin/python bench/export.py [--rows 1000000] [--formats jsonl,csv,jsonl+outputs]
        [--database tunelab_bench]

Creates a PostgreSQL database (`--database`, default `tunelab_bench`; 127.0.0.1:5432, user
postgres), fills it with a detection project on the 1-5 scale whose ratings are generated in SQL
(generate_series: seconds, not minutes), each candidate with three boxes, starts gunicorn (one
sync worker) on 127.0.0.1, streams the export with a plain HTTP client, and reports rows/s and
the worker's resident memory (VmRSS, sampled every 20 ms) before and during the stream. Drops
the database at the end (--keep leaves it). `jsonl+outputs` is JSONL with `include=outputs`
(each row carries its candidate's boxes, classes and scores and the item's image URL).
Targets: JSONL over 50,000 rows/s, with outputs inline over 30,000 rows/s, the server growing
by less than 100 MB.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
PG = "postgres://postgres@127.0.0.1:5432"
ANNOTATORS = 20
VERSIONS = 2
# Every candidate's output: three boxes, as a small detector's.
OUTPUT = {"objects": [{"bbox": [4.0 + 9 * i, 6.0, 20.5, 18.25], "category_id": 1 + i % 2,
                       "score": round(0.9 - 0.2 * i, 2)} for i in range(3)]}


def _admin_sql(statement: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def _setup_django(database: str) -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO / "platform"))
    import django

    django.setup()


def _fill(rows: int) -> tuple[int, str]:
    """A scale project with `rows` ratings; returns (project id, admin's API token)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from labeling.models import Rating, Task, TaskCandidate
    from projects.models import Candidate, Item
    from projects.services import membership_set, model_version_get_or_create, project_create

    call_command("migrate", verbosity=0)
    users = get_user_model().objects
    admin = users.create_user(username="bench-admin")
    project = project_create(name="bench", task="detection", rating_mode="scale",
                             overlap=ANNOTATORS, created_by=admin,
                             categories=[{"id": 1, "name": "circle"},
                                         {"id": 2, "name": "square"}])
    annotators = [users.create_user(username=f"annotator-{i}") for i in range(ANNOTATORS)]
    for user in annotators:
        membership_set(project=project, user=user, role="annotator")
    for i in range(VERSIONS):
        model_version_get_or_create(project=project, name=f"model-{i}")
    n_tasks = -(-rows // ANNOTATORS)
    n_items = -(-n_tasks // VERSIONS)
    tables = {model.__name__: model._meta.db_table
              for model in (Item, Candidate, Task, TaskCandidate, Rating)}
    ids = ",".join(str(user.pk) for user in annotators)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {tables['Item']} (project_id, file_name, image, width, height, "
            "created_at) SELECT %s, 'img_' || g || '.png', 'bench/img_' || g || '.png', 64, 64, "
            "now() FROM generate_series(1, %s) g", [project.pk, n_items])
        cursor.execute(
            f"INSERT INTO {tables['Candidate']} (item_id, model_version_id, sample_index, output, "
            "created_at) SELECT i.id, v.id, 0, %s, now() "
            f"FROM {tables['Item']} i, projects_modelversion v "
            "WHERE i.project_id = %s AND v.project_id = %s ORDER BY i.id, v.id",
            [json.dumps(OUTPUT), project.pk, project.pk])
        cursor.execute(
            f"INSERT INTO {tables['Task']} (project_id, item_id, key, answers_needed, "
            f"answer_count, created_at) SELECT %s, c.item_id, c.id::text, %s, %s, now() "
            f"FROM {tables['Candidate']} c JOIN {tables['Item']} i ON i.id = c.item_id "
            "WHERE i.project_id = %s ORDER BY c.id LIMIT %s",
            [project.pk, ANNOTATORS, ANNOTATORS, project.pk, n_tasks])
        cursor.execute(
            f"INSERT INTO {tables['TaskCandidate']} (task_id, candidate_id, position) "
            f"SELECT id, key::bigint, 0 FROM {tables['Task']} WHERE project_id = %s",
            [project.pk])
        cursor.execute(
            f"INSERT INTO {tables['Rating']} (task_id, annotator_id, idempotency_key, "
            "time_spent_ms, created_at, candidate_id, score) "
            "SELECT t.id, u, t.id || '-' || u, (random() * 9000)::int + 500, "
            "now() - random() * interval '30 days', t.key::bigint, 1 + (random() * 4)::int "
            f"FROM {tables['Task']} t, unnest(ARRAY[{ids}]) u WHERE t.project_id = %s "
            "ORDER BY t.id, u LIMIT %s",
            [project.pk, rows])
        cursor.execute("ANALYZE")
    token = Token.objects.create(user=admin).key
    connection.close()
    return project.pk, token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _worker_pid(master: int) -> int:
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _get(port: int, token: str, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", path, headers={"Authorization": f"Token {token}"})
    return conn.getresponse()


def _stream(port: int, token: str, path: str, worker: int) -> dict:
    """Stream one export; count lines, time it, and sample the worker's RSS meanwhile."""
    baseline = _rss_mb(worker)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb(worker))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    response = _get(port, token, path)
    assert response.status == 200, (response.status, response.read()[:500])
    lines = size = 0
    while chunk := response.read(1 << 20):
        lines += chunk.count(b"\n")
        size += len(chunk)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"lines": lines, "seconds": seconds, "mb": size / 1e6,
            "rss_before_mb": baseline, "rss_peak_mb": peak[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl",
                        help="comma-separated: jsonl,csv,jsonl+outputs,csv+outputs")
    parser.add_argument("--database", default="tunelab_bench")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    _admin_sql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    _admin_sql(f'CREATE DATABASE "{args.database}"')
    server = None
    try:
        started = time.perf_counter()
        _setup_django(args.database)
        project, token = _fill(args.rows)
        print(f"filled {args.rows:,} ratings in {time.perf_counter() - started:.1f} s")
        port = _free_port()
        env = dict(os.environ, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="bench-only-secret",
                   DJANGO_ALLOWED_HOSTS="127.0.0.1")
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi",
             "--chdir", str(REPO / "platform"), "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--timeout", "600", "--log-level", "warning"],
            env=env,
        )
        worker = _worker_pid(server.pid)
        for _ in range(100):  # warm up: imports, the database connection, the first query
            try:
                warm = _get(port, token, f"/api/projects/{project}/export/?page_size=10")
                warm.read()
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        assert warm.status == 200, warm.status
        for fmt in args.formats.split(","):
            kind, _, include = fmt.partition("+")
            query = f"format={kind}" + (f"&include={include}" if include else "")
            result = _stream(port, token, f"/api/projects/{project}/export/?{query}", worker)
            rows = result["lines"] - (kind == "csv")  # the CSV header line
            assert rows == args.rows, (rows, args.rows)
            print(
                f"{fmt}: {rows:,} rows, {result['mb']:.0f} MB in {result['seconds']:.1f} s = "
                f"{rows / result['seconds']:,.0f} rows/s; server RSS "
                f"{result['rss_before_mb']:.0f} MB before, {result['rss_peak_mb']:.0f} MB peak "
                f"(+{result['rss_peak_mb'] - result['rss_before_mb']:.1f} MB)"
            )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            _admin_sql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
