# Sales OS production image: gunicorn (web), celery worker and celery beat all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=salesos.settings

WORKDIR /app

# Dependencies first (pyproject.toml is the single list), so code changes reuse this layer.
COPY pyproject.toml ./
COPY scripts/install.py scripts/install.py
RUN python scripts/install.py --no-stamp

COPY . .

# Static files are collected into the image and served by WhiteNoise. The build needs no
# secrets: these throwaway values exist only for this one command.
RUN SECRET_KEY=collectstatic-only \
    FIELD_ENCRYPTION_KEYS=build:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput

RUN useradd --create-home --uid 10001 salesos \
    && mkdir -p /app/var/media \
    && chown -R salesos:salesos /app/var
USER salesos

EXPOSE 8000
CMD ["gunicorn", "salesos.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--forwarded-allow-ips", "*"]
