"""PostgreSQL row-level security: the second isolation wall (DESIGN §2).

After every `migrate`, each `TenantOwned` table gets RLS enabled and forced (so the table's
owner is subject to it too) and one policy, `tenant_isolation`, which lets a row through only
when its tenant is the connection's `app.tenant_id`, or when the connection is explicitly in
platform access. An unset or empty setting matches nothing. The SQL is idempotent, so a new
model is covered the first time migrate runs, with nothing to remember.
"""

from __future__ import annotations

from django.db import connections

POLICY_NAME = "tenant_isolation"

POLICY_PREDICATE = (
    "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint"
    " OR current_setting('app.platform_access', true) = 'on'"
)


def policy_statements(table: str) -> list[str]:
    quoted = f'"{table}"'
    return [
        f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {quoted}",
        f"CREATE POLICY {POLICY_NAME} ON {quoted} "
        f"USING ({POLICY_PREDICATE}) WITH CHECK ({POLICY_PREDICATE})",
    ]


def install_policies(models, using: str = "default") -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            if table not in existing:
                continue
            for statement in policy_statements(table):
                cursor.execute(statement)


def install_after_migrate(sender, app_config, using="default", **kwargs) -> None:
    from tenants.models import TenantOwned

    models = [m for m in app_config.get_models() if issubclass(m, TenantOwned)]
    install_policies(models, using=using)


def tables_with_policy(using: str = "default") -> dict[str, dict]:
    """What the catalogue says: table -> {enabled, forced, policies}, for the coverage test."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   coalesce(array_agg(p.polname) FILTER (WHERE p.polname IS NOT NULL), '{}')
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
            LEFT JOIN pg_policy p ON p.polrelid = c.oid
            WHERE c.relkind = 'r'
            GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
            """
        )
        return {
            name: {"enabled": enabled, "forced": forced, "policies": list(policies)}
            for name, enabled, forced, policies in cursor.fetchall()
        }
