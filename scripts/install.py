#!/usr/bin/env python3
"""Install the project's dependencies into the running interpreter's environment.

pyproject.toml is the single list of dependencies: this reads `[project] dependencies` (and,
with `--dev`, the `dev` extra) and hands them to pip. A stamp file beside the interpreter
remembers what was installed, so a re-run skips pip until pyproject.toml changes.

    python scripts/install.py            # what `make run` needs
    python scripts/install.py --dev      # plus what the tests and linters need
    python scripts/install.py --print    # only print the requirement lines
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def requirements(extras: list[str] | tuple[str, ...] = ()) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no optional dependency group {extra!r}")
        lines.extend(optional[extra])
    return lines


def _stamp_path(extras) -> Path:
    name = "-".join(["salesos-installed", *extras]) + ".stamp"
    return Path(sys.prefix) / name


def _fingerprint(lines: list[str]) -> str:
    text = "\n".join([sys.version, *lines])
    return hashlib.sha256(text.encode()).hexdigest()


def install(extras, *, force: bool = False, stamp: bool = True) -> None:
    lines = requirements(extras)
    fingerprint = _fingerprint(lines)
    stamp_file = _stamp_path(extras)
    up_to_date = stamp_file.exists() and stamp_file.read_text() == fingerprint
    if not extras:  # an environment installed for development has the runtime too
        dev = _stamp_path(("dev",))
        up_to_date = up_to_date or (
            dev.exists() and dev.read_text() == _fingerprint(requirements(("dev",)))
        )
    if stamp and not force and up_to_date:
        print(f"Dependencies up to date ({', '.join(['runtime', *extras])}).")
        return
    command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *lines]
    print("Installing dependencies from pyproject.toml ...", flush=True)
    subprocess.run(command, check=True)
    if stamp:
        stamp_file.write_text(fingerprint)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also install the dev extra")
    parser.add_argument("--force", action="store_true", help="ignore the stamp file")
    parser.add_argument("--no-stamp", action="store_true", help="do not read or write a stamp")
    parser.add_argument("--print", action="store_true", help="print the requirements and exit")
    args = parser.parse_args(argv)
    extras = ("dev",) if args.dev else ()
    if args.print:
        print("\n".join(requirements(extras)))
        return
    install(extras, force=args.force, stamp=not args.no_stamp)


if __name__ == "__main__":
    main()
