#!/bin/bash
# docker-initdb.sh - the creneau bootstrap inside the postgres:15 image.
#
# docker-compose.yml mounts it as /docker-entrypoint-initdb.d/10-creneau.sh
# and deploy/bootstrap.sql as /opt/creneau/bootstrap.sql; the image runs it
# once, when the data volume is first initialised, with a server listening on
# its unix socket only. It reads the role passwords from the secrets volume
# (written by `creneau-entrypoint init-secrets`) and runs the same
# bootstrap.sql as deploy/creneau: one schema and one role per service.
#
# Settings: CRENEAU_SECRETS_DIR (default /run/creneau-secrets),
# CRENEAU_BOOTSTRAP_SQL (default /opt/creneau/bootstrap.sql); the usual PG*
# variables say where the server is (the image's defaults otherwise).
set -euo pipefail

secrets=${CRENEAU_SECRETS_DIR:-/run/creneau-secrets}
sql=${CRENEAU_BOOTSTRAP_SQL:-/opt/creneau/bootstrap.sql}

read_secret() {
	if [[ ! -r $secrets/$1 ]]; then
		echo "docker-initdb.sh: cannot read $secrets/$1" >&2
		exit 1
	fi
	cat "$secrets/$1"
}

CRENEAU_PG_PASSWORD_ACCOUNTS=$(read_secret pg_accounts)
CRENEAU_PG_PASSWORD_BOOKING=$(read_secret pg_booking)
CRENEAU_PG_PASSWORD_CALENDAR=$(read_secret pg_calendar)
CRENEAU_PG_PASSWORD_GDPR=$(read_secret pg_gdpr)
CRENEAU_PG_PASSWORD_NOTIFY=$(read_secret pg_notify)
export CRENEAU_PG_PASSWORD_ACCOUNTS CRENEAU_PG_PASSWORD_BOOKING \
	CRENEAU_PG_PASSWORD_CALENDAR CRENEAU_PG_PASSWORD_GDPR \
	CRENEAU_PG_PASSWORD_NOTIFY

psql -X -q -v ON_ERROR_STOP=1 \
	--username "${PGUSER:-${POSTGRES_USER:-postgres}}" \
	--dbname postgres -f "$sql" </dev/null
echo "docker-initdb.sh: creneau database, roles and schemas ready"
