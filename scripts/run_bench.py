#!/usr/bin/env python3
"""`make bench`: run every bench/*.py with this interpreter, passing the arguments on.

Each benchmark is a standalone script (it sets up Django itself); the run stops at the first
one that fails and exits with its status. No benchmarks is not an error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"


def benchmarks(directory: Path = BENCH_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def main(argv: list[str] | None = None, *, directory: Path = BENCH_DIR) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    scripts = benchmarks(directory)
    if not scripts:
        print(f"No benchmarks yet: add scripts as {directory.name}/<name>.py.")
        return 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.setdefault("DJANGO_SETTINGS_MODULE", "salesos.settings")
    for script in scripts:
        print(f"== {script.name} {' '.join(args)}".rstrip(), flush=True)
        code = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env).returncode
        if code != 0:
            print(f"{script.name} failed with exit status {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
