"""How the project is run, tested, configured and deployed: the pieces a newcomer relies on."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(
        f"salesos_scripts_{name}", ROOT / "scripts" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install = _script("install")
run_dev = _script("run_dev")
run_tests = _script("run_tests")
run_bench = _script("run_bench")

ENV_READERS = {"bool", "int", "float", "list", "tuple", "dict", "str", "json", "url", "path"}
ENV_READERS |= {"db", "db_url", "cache", "cache_url", "email", "email_url", "search_url"}


def settings_variables() -> set[str]:
    """Every environment variable salesos/settings.py reads, found in its syntax tree."""
    tree = ast.parse((ROOT / "salesos" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        func = node.func
        reads_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
            and func.attr in ENV_READERS
        )
        reads_os = (
            isinstance(func, ast.Attribute)
            and func.attr in {"get", "getenv"}
            and ast.unparse(func.value) in {"os.environ", "os"}
        )
        if reads_env or reads_os:
            names.add(first.value)
    return names


def documented_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_the_settings_parser_finds_the_variables_it_should():
    found = settings_variables()
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "CACHE_URL", "EMAIL_URL"} <= found
    assert {"FIELD_ENCRYPTION_KEYS", "SECURE_HSTS_PRELOAD", "SIGNUP_OPEN"} <= found


def test_every_variable_the_settings_read_is_documented_in_env_example():
    missing = settings_variables() - documented_variables()
    assert not missing, f".env.example does not document: {sorted(missing)}"


def test_env_example_sets_no_secret():
    text = (ROOT / ".env.example").read_text()
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "POSTGRES_PASSWORD", "APP_DB_PASSWORD"):
        assert re.search(rf"^{name}=$", text, flags=re.MULTILINE), f"{name} must be empty"


def test_pyproject_is_the_single_list_of_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert install.requirements() == project["dependencies"]
    assert install.requirements(("dev",)) == (
        project["dependencies"] + project["optional-dependencies"]["dev"]
    )


def _dependency_names() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [re.split(r"[\[<>=!~ ;]", line, maxsplit=1)[0] for line in lines]


def test_the_readme_says_why_every_dependency_is_there():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Dependencies", 1)[1].split("\n## ", 1)[0]
    for name in _dependency_names():
        assert re.search(rf"^- \*\*{re.escape(name)}\*\*", section, re.MULTILINE | re.I), (
            f"README's Dependencies section does not explain {name}"
        )


def test_the_readme_names_the_entry_points_and_the_demo_login():
    readme = (ROOT / "README.md").read_text()
    for text in ("make run", "make test", "make bench", "demo@example.com", "demo-password-123"):
        assert text in readme


def test_make_run_uses_the_embedded_defaults():
    env = run_dev.development_environment({"PORT": "8123"})

    assert env["DEBUG"] == "1"
    assert env["CELERY_TASK_ALWAYS_EAGER"] == "1"
    assert env["EMAIL_URL"] == "consolemail://"
    assert env["DATABASE_URL"] == f"sqlite:///{ROOT / 'var' / 'db.sqlite3'}"
    assert env["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_test_runner_falls_back_to_sqlite_when_postgresql_does_not_answer(capsys):
    admin_url = f"postgres://postgres@127.0.0.1:{_closed_port()}/postgres"

    url, postgres = run_tests.choose_database({"DATABASE_ADMIN_URL": admin_url})

    assert not postgres
    assert url.startswith("sqlite:///")
    assert "Falling back to SQLite" in capsys.readouterr().out


def test_the_test_runner_uses_an_explicit_database_url():
    url, postgres = run_tests.choose_database({"DATABASE_URL": "postgres://u:p@db:5432/x"})
    assert (url, postgres) == ("postgres://u:p@db:5432/x", True)


def test_the_test_runner_connects_as_the_application_role():
    url = run_tests.app_database_url("postgres://postgres:secret@db.internal:6543/postgres")
    assert url == "postgres://salesos_app:salesos@db.internal:6543/salesos"


def test_the_test_runner_refuses_missing_services_when_they_are_required(monkeypatch, capsys):
    monkeypatch.setenv("REQUIRE_SERVICES", "1")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///unused.sqlite3")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")

    assert run_tests.main(["--collect-only"]) == 1
    out = capsys.readouterr().out
    assert "not PostgreSQL" in out
    assert "Redis is unreachable" in out


def test_make_bench_runs_every_benchmark_and_stops_at_a_failing_one(tmp_path, capfd):
    # The real benchmarks take minutes each and live outside the suite (speed targets are
    # never unit tests); this checks the runner with small scripts of the same shape.
    empty = tmp_path / "none"
    empty.mkdir()
    assert run_bench.main(["--quick"], directory=empty) == 0
    assert "No benchmarks yet" in capfd.readouterr().out

    benches = tmp_path / "bench"
    benches.mkdir()
    for name in ("alpha", "beta"):
        (benches / f"{name}.py").write_text(
            f"import sys\nprint('bench {name}: args=' + ','.join(sys.argv[1:]))\n"
        )
    (benches / "_shared.py").write_text("raise SystemExit(3)\n")
    assert run_bench.main(["--quick"], directory=benches) == 0
    out = capfd.readouterr().out
    assert "bench alpha: args=--quick" in out and "bench beta: args=--quick" in out

    (benches / "alpha.py").write_text("raise SystemExit(4)\n")
    assert run_bench.main([], directory=benches) == 4
    assert "bench beta" not in capfd.readouterr().out


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bench").glob("[!_]*.py")))
def test_every_benchmark_takes_quick_and_documents_itself(script):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--quick" in result.stdout


def test_the_makefile_has_the_documented_targets():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test", "lint", "bench", "install", "install-dev"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target


def test_ci_entry_point_is_executable_and_requires_the_services():
    ci = ROOT / ".ci" / "run"
    assert ci.stat().st_mode & 0o111
    text = ci.read_text()
    assert "REQUIRE_SERVICES=1" in text
    assert "make lint" in text


def test_docker_compose_has_the_production_shape():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    assert {"web", "worker", "beat", "db", "redis", "migrate"} <= set(services)
    assert "gunicorn" in services["web"]["command"]
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]
    for name in ("web", "db", "redis", "worker"):
        assert "healthcheck" in services[name], name
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["web"]["env_file"] == ".env"


def test_the_database_init_script_creates_a_role_that_cannot_bypass_rls():
    script = (ROOT / "scripts" / "docker" / "postgres-init.sh").read_text()
    assert "NOSUPERUSER" in script
    assert "NOBYPASSRLS" in script
    assert "OWNER" in script


def test_the_image_runs_as_a_non_root_user_and_collects_static_files():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE)
    assert "collectstatic" in dockerfile
