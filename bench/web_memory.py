"""Resident memory of one gunicorn web worker after its first requests, and whether it loaded
torch.

    .venv/bin/python bench/web_memory.py [--repo DIR]

Migrates a fresh SQLite database in a temporary data folder, creates a detection project with
an admin and a token, starts gunicorn (`scripts/gunicorn.conf.py`, one worker) on a free port
of 127.0.0.1, sends the requests a project admin's first minutes send (the login page, the
project list, the tuning-run list and the OpenAPI schema), then reads the worker's VmRSS from
/proc and prints one JSON line. `--repo` measures another checkout (e.g. an older commit's
worktree) with this one's script. Target: under 150 MB, and no torch.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUP = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from projects.services import project_create
admin = get_user_model().objects.create_user(username="bench-admin", password="x")
project = project_create(name="bench", task="detection", rating_mode="pairwise",
                         created_by=admin)
print(project.pk, Token.objects.create(user=admin).key)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, token: str | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}"} if token else {}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _maps_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def measure(repo: Path) -> dict:
    python = str(REPO / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="tunelab-web-memory-") as data:
        env = {**os.environ, "TUNELAB_DATA_DIR": data, "DJANGO_SETTINGS_MODULE": "config.settings",
               "PYTHONPATH": f"{repo}:{repo / 'platform'}", "WEB_WORKERS": "1"}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        project, token = subprocess.run([python, "-c", SETUP], cwd=repo / "platform", env=env,
                                        capture_output=True, text=True, check=True
                                        ).stdout.split()
        port = _free_port()
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "config.wsgi", "-c", str(repo / "scripts/gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}"], cwd=repo / "platform", env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    _get(port, "/login/")
                    break
                except OSError:
                    time.sleep(0.1)
            statuses = [_get(port, "/login/"),
                        _get(port, "/api/projects/", token),
                        _get(port, f"/api/projects/{project}/tuning-runs/", token),
                        _get(port, "/api/schema/", token)]
            (worker,) = _children(server.pid)
            return {"repo": str(repo), "statuses": statuses,
                    "worker_rss_mb": round(_rss_mb(worker), 1), "torch_loaded": _maps_torch(worker)}
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO)
    print(json.dumps(measure(parser.parse_args().repo.resolve())))


if __name__ == "__main__":
    sys.exit(main())
