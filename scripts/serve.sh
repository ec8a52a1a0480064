#!/usr/bin/env bash
# Start the web server and a real Celery worker; Ctrl-C stops both. The web server is the one a
# deployment runs (gunicorn, scripts/gunicorn.conf.py): a bounded pool of threads, so of
# database connections; under DEBUG it also serves the static files (config/urls.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
PORT="${PORT:-8000}"
export PYTHONPATH="$PWD/platform${PYTHONPATH:+:$PYTHONPATH}"

pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "Stopping Tunelab..."
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

"$PY" -m celery -A config worker --loglevel=info --concurrency=1 -Q default,gpu &
pids+=($!)
# A short graceful timeout: Ctrl-C on a laptop need not wait for a slow request to finish.
"$PY" -m gunicorn config.wsgi -c scripts/gunicorn.conf.py --bind "127.0.0.1:$PORT" \
    --graceful-timeout 5 &
pids+=($!)

echo
echo "Tunelab is running at http://127.0.0.1:$PORT/  (admin: http://127.0.0.1:$PORT/admin/)"
echo "Press Ctrl-C to stop the web server and the worker."
wait -n "${pids[@]}"
