#!/bin/sh
# Creates Temporal's two PostgreSQL databases when they are missing and brings both schemas up to the
# version this admin-tools image ships. It runs before every server start and is safe to repeat:
# setup-schema leaves a database that is already past 0.0 alone, update-schema applies only what is
# newer. Upgrading Temporal is therefore: bump the server and admin-tools images together, `up -d`.
#
# The password comes from SQL_PASSWORD (the environment), never from the command line.
set -eu

: "${SQL_PASSWORD:?SQL_PASSWORD must hold the PostgreSQL password (POSTGRES_PASSWORD in .env)}"
host="${SQL_HOST:-postgresql}"
port="${SQL_PORT:-5432}"
user="${SQL_USER:-temporal}"
schemas=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" "$@"
}

setup_database() {
  database="$1"
  schema_dir="$2"
  # `create` fails when the database exists (the PostgreSQL image creates `temporal` itself on first
  # start). If it is missing for another reason, setup-schema below fails and so does this script.
  if sql_tool --db "$database" create; then
    echo "database $database created"
  else
    echo "database $database not created: it already exists, or setup-schema will say why"
  fi
  sql_tool --db "$database" setup-schema -v 0.0
  sql_tool --db "$database" update-schema -d "$schemas/$schema_dir/versioned"
  echo "database $database is at the schema version this image ships"
}

setup_database temporal temporal
setup_database temporal_visibility visibility
