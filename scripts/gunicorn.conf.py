"""gunicorn settings for Tunelab's web server on a small machine (2 cores):
`gunicorn config.wsgi -c scripts/gunicorn.conf.py` (docker-compose.yml, `make run` through
scripts/serve.sh, and bench/answers.py use it). Flags override.

Threads carry the concurrency: a request spends much of its time waiting on PostgreSQL (and its
commits), and an annotator's keep-alive connection stays open between answers. One process per
core; more processes only add GIL-free CPU the cores do not have, more threads per process add
GIL contention. `WEB_WORKERS` and `WEB_THREADS` change them.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
keepalive = 5  # seconds an idle keep-alive connection is kept
timeout = 120  # seconds a request may run before its worker is restarted (large imports)
# No control socket: it is one path per user ($HOME/.gunicorn), which several servers on one
# machine (`make run`, the answer benchmark) would take from each other; nothing uses it.
control_socket_disable = True
backlog = 256


def post_worker_init(worker) -> None:
    """Load what the first request would (the URL conf imports every view), then freeze it.

    `gc.freeze()` moves the app's few hundred thousand long-lived objects out of the cyclic
    collector's sight. Left in, every full (generation 2) collection walks them all while
    holding the GIL: 130-160 ms in which none of the worker's threads answers, which was the
    answer benchmark's p99. Request garbage is still collected as before.
    """
    import gc

    from django.urls import get_resolver

    _ = get_resolver().url_patterns  # imports every view module
    gc.freeze()
