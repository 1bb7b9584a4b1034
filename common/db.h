/* db.h - PostgreSQL for a service: mapped errors, reconnection, migrations. */
#ifndef CRENEAU_DB_H
#define CRENEAU_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>
#include "error.h"

struct db;

/* One embedded migration: services/<name>/migrations/NNN_what.sql. */
struct db_migration {
	const char *name; /* "001_accounts.sql" */
	const char *sql;
};

/*
 * db_open - connects with conninfo (the service's own login role; its
 * search_path is its schema). Unless conninfo says otherwise, it adds
 * connect_timeout=5, application_name=creneau and a 30 s statement_timeout.
 * A database that is down is not an error here: the handle is returned and
 * later calls reconnect. ERR_NOMEM, or ERR_INVALID (logged) when conninfo
 * does not parse. The handle is used by one thread at a time.
 */
int db_open(struct db **out, const char *conninfo) WARN_UNUSED;

/* db_close - disconnects and frees; NULL is a no-op. */
void db_close(struct db *db);

/*
 * db_ensure - makes sure the connection is up, reconnecting if PostgreSQL
 * restarted. 0 or ERR_UNAVAILABLE. Inside a transaction whose connection was
 * lost it does not reconnect (the transaction is gone): ERR_UNAVAILABLE
 * until db_rollback.
 */
int db_ensure(struct db *db) WARN_UNUSED;

/* db_ping - true when "SELECT 1" succeeds (reconnecting if needed). */
bool db_ping(struct db *db); /* NULL: false */

/*
 * db_exec - runs one parameterised statement (text parameters, NULL for SQL
 * NULL). On success *res_out (if not NULL) takes the PGresult, which the
 * caller clears with PQclear; on failure nothing is returned and the cause
 * (SQLSTATE) is logged. Codes: ERR_CONFLICT (unique or exclusion violation),
 * ERR_INVALID (bad data: 22xxx, check/not-null/foreign-key violations),
 * ERR_UNAVAILABLE (connection lost: the caller's transaction is gone; also
 * serialization failure and deadlock, 40001/40P01, worth a retry),
 * ERR_TIMEOUT (statement or lock timeout), ERR_INTERNAL otherwise.
 * Outside a transaction a lost connection is re-established first; the
 * statement that finds it lost fails (it is never resent).
 * Call only from store.c files: a PGresult never leaves them.
 */
int db_exec(struct db *db, const char *sql, int nparams,
	    const char *const *params, PGresult **res_out) WARN_UNUSED;

/*
 * db_exec_binary - like db_exec, with explicit parameter lengths and formats
 * (1 = binary) for bytea parameters.
 */
int db_exec_binary(struct db *db, const char *sql, int nparams,
		   const char *const *params, const int *lengths,
		   const int *formats, PGresult **res_out) WARN_UNUSED;

/* Transactions. db_begin reconnects first if needed; ERR_INTERNAL if one is
 * open. db_commit: ERR_INTERNAL outside a transaction or when a statement of
 * it failed (it is rolled back), else db_exec's codes (ERR_UNAVAILABLE: the
 * outcome is unknown). db_rollback is safe to call after any failure, and a
 * no-op outside a transaction. */
int db_begin(struct db *db) WARN_UNUSED;
int db_commit(struct db *db) WARN_UNUSED;
void db_rollback(struct db *db);

/*
 * db_migrate - applies, in order and once each, the migrations not yet
 * recorded in <schema>.schema_migrations: first the common ones (the event
 * outbox and cursors), then the service's. Runs under an advisory lock so
 * replicas starting together apply each migration once. Each migration runs
 * in its own transaction, with schema first on its search_path, and may hold
 * several statements. Fails (logged, ERR_INTERNAL) at the first error;
 * ERR_UNAVAILABLE when the database is down (worth waiting for). Names are
 * recorded as given, the common ones prefixed "common/".
 */
int db_migrate(struct db *db, const char *schema,
	       const struct db_migration *migrations, size_t n) WARN_UNUSED;

/* db_conn - the raw connection, for LISTEN and the events module. */
PGconn *db_conn(struct db *db);

#endif
