# One image for every Tunelab service: the web server (gunicorn), Celery workers (CPU and GPU)
# and Celery beat; docker-compose.yml picks the command. Configuration comes from the
# environment (platform/config/env.py), never from the image.
#
# torch: the default wheel of torch==2.13.0 on Linux x86_64 carries CUDA and runs on CPU too,
# so one image serves CPU and GPU workers. For a smaller CPU-only image, build with
# --build-arg TORCH_INDEX_URL=<the PyTorch CPU wheel index>.
FROM python:3.12-slim

ARG TORCH_INDEX_URL=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app/platform \
    TUNELAB_DATA_DIR=/data \
    TUNELAB_MEDIA_ROOT=/data/media

WORKDIR /app

# Dependencies first (a layer that survives code changes): torch pinned as the Makefile does,
# then the rest of pyproject.toml's list.
COPY pyproject.toml README.md ./
RUN pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

COPY . .
RUN pip install --no-deps -e . \
 && useradd --create-home --uid 1000 tunelab \
 && mkdir -p /data/media /data/static \
 && chown -R tunelab /data

USER tunelab
EXPOSE 8000
# The web server by default; docker-compose.yml sets each service's command.
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py collectstatic --noinput && gunicorn config.wsgi -c scripts/gunicorn.conf.py --bind 0.0.0.0:8000"]
