#!/bin/sh
# First start of the PostgreSQL container: the application's own role and database.
# The role is neither a superuser nor BYPASSRLS, so row-level security (FORCEd on every
# tenant-owned table) applies to it; it owns its database and runs the migrations.
# It may set session_replication_role and wal_compression: the retention purge then checks
# foreign keys once per batch of rows itself instead of PostgreSQL's once per row, and
# compresses the WAL its deletes write (privacy/retention.py, `purge_rights`).
set -eu

: "${APP_DB_USER:=salesos_app}"
: "${APP_DB_NAME:=salesos}"
: "${APP_DB_PASSWORD:?APP_DB_PASSWORD must be set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_user="$APP_DB_USER" -v app_db="$APP_DB_NAME" -v app_password="$APP_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'app_user', :'app_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db') \gexec
SELECT format('GRANT SET ON PARAMETER session_replication_role, wal_compression TO %I', :'app_user') \gexec
SQL
