#!/usr/bin/env python3
"""`make run`: the embedded development server, with nothing else to install or start.

SQLite in var/db.sqlite3, Celery tasks run in-process (eager), e-mail printed to the console,
DEBUG on. Migrates, seeds the demo business (idempotent; prints the URL and login) and serves
on 127.0.0.1:$PORT (8000 by default). DATABASE_URL and PUBLIC_BASE_URL may be overridden.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def development_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    port = env.get("PORT") or "8000"
    env["PORT"] = port
    env["DEBUG"] = "1"
    env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    env["EMAIL_URL"] = "consolemail://"
    env.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'db.sqlite3'}")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    # Send rate limits in the process: nothing else to start (one process sends).
    env.setdefault("RATE_LIMIT_REDIS_URL", "memory")
    env.setdefault("DJANGO_SETTINGS_MODULE", "salesos.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def main() -> None:
    env = development_environment()
    (ROOT / "var").mkdir(exist_ok=True)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True)
    address = f"127.0.0.1:{env['PORT']}"
    print(f"Serving on http://{address}/ (Ctrl-C to stop)", flush=True)
    os.chdir(ROOT)
    os.execve(sys.executable, [*manage, "runserver", address], env)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
