#!/usr/bin/env bash
# Start the web server and a real Celery worker; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
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
"$PY" manage.py runserver "127.0.0.1:$PORT" --noreload &
pids+=($!)

echo
echo "Tunelab is running at http://127.0.0.1:$PORT/  (admin: http://127.0.0.1:$PORT/admin/)"
echo "Press Ctrl-C to stop the web server and the worker."
wait -n "${pids[@]}"
