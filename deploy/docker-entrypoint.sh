#!/bin/sh
# docker-entrypoint.sh - runs a creneau program in its container (installed
# as /usr/local/bin/creneau-entrypoint in the image built by deploy/Dockerfile).
#
#   creneau-entrypoint init-secrets        (as root, once: the "secrets"
#                                           service of docker-compose.yml)
#   creneau-entrypoint <program> [args]    gateway, accounts, booking,
#                                           calendar-sync, gdpr-retention,
#                                           notifications, creneauctl
#
# Secrets never appear in docker-compose.yml nor in `docker inspect`: they are
# generated once into the secrets volume (CRENEAU_SECRETS_DIR, default
# /run/creneau-secrets) - the deployment MAC key (rpc_key), one password per
# PostgreSQL role (pg_<schema>) and the superuser's (pg_superuser) - and
# read here just before exec: CRENEAU_RPC_KEY for every program, and for a
# service CRENEAU_DB built from CRENEAU_DB_HOST (default postgres) and
# CRENEAU_DB_PORT (default 5432) unless CRENEAU_DB is already set.
set -eu

secrets=${CRENEAU_SECRETS_DIR:-/run/creneau-secrets}
# uid/gid that must read the secrets: postgres in the postgres:15 image
# (999), creneau in ours (10001).
pg_uid=${CRENEAU_PG_UID:-999}
creneau_gid=${CRENEAU_GID:-10001}

die() { echo "creneau-entrypoint: $*" >&2; exit 1; }

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

init_secrets() {
	[ "$(id -u)" = 0 ] || die "init-secrets must run as root (it sets owners)"
	mkdir -p "$secrets"
	chmod 0755 "$secrets"
	for entry in rpc_key:32 pg_superuser:24 pg_accounts:24 pg_booking:24 \
		pg_calendar:24 pg_gdpr:24 pg_notify:24; do
		name=${entry%%:*}
		bytes=${entry#*:}
		if [ ! -s "$secrets/$name" ]; then
			umask 077
			random_hex "$bytes" >"$secrets/$name.tmp"
			mv "$secrets/$name.tmp" "$secrets/$name"
			echo "creneau-entrypoint: generated $name"
		fi
		chown "$pg_uid:$creneau_gid" "$secrets/$name"
		chmod 0440 "$secrets/$name"
	done
}

read_secret() {
	[ -r "$secrets/$1" ] || die "cannot read $secrets/$1 (did the secrets service run?)"
	cat "$secrets/$1"
}

[ $# -ge 1 ] || die "usage: creneau-entrypoint init-secrets | <program> [args]"

if [ "$1" = init-secrets ]; then
	init_secrets
	exit 0
fi

program=$(basename "$1")
case $program in
accounts) schema=accounts ;;
booking) schema=booking ;;
calendar-sync) schema=calendar ;;
gdpr-retention) schema=gdpr ;;
notifications) schema=notify ;;
gateway | creneauctl) schema= ;;
*) exec "$@" ;; # anything else (a shell for debugging) as is
esac

if [ -z "${CRENEAU_RPC_KEY:-}" ]; then
	CRENEAU_RPC_KEY=$(read_secret rpc_key)
	export CRENEAU_RPC_KEY
fi
if [ -n "$schema" ] && [ -z "${CRENEAU_DB:-}" ]; then
	password=$(read_secret "pg_$schema")
	CRENEAU_DB="host=${CRENEAU_DB_HOST:-postgres} port=${CRENEAU_DB_PORT:-5432} dbname=creneau user=creneau_$schema password=$password application_name=${CRENEAU_INSTANCE:-$program} connect_timeout=5"
	export CRENEAU_DB
	unset password
fi
unset CRENEAU_DB_HOST CRENEAU_DB_PORT CRENEAU_SECRETS_DIR CRENEAU_PG_UID CRENEAU_GID
exec "$@"
