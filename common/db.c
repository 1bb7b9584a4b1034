/* db.c - PostgreSQL for a service: mapped errors, reconnection, migrations. */
#include "db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "log.h"

/* What db_open adds to a connection string that does not say otherwise. */
#define DEFAULT_CONNECT_TIMEOUT "5"
#define DEFAULT_APPLICATION_NAME "creneau"
#define STATEMENT_TIMEOUT_OPTION "-c statement_timeout=30s"

/* Longest migration name recorded ("common/" + file name). */
#define MIGRATION_NAME_MAX 256

struct db {
	PGconn *conn;
	PQconninfoOption *parsed; /* owns the strings keywords/values borrow */
	const char **keywords;    /* NULL-terminated, for PQconnectdbParams */
	const char **values;
	char *options;            /* the "options" value we composed, or NULL */
	bool in_txn;              /* between db_begin and db_commit/rollback */
	bool server_left;         /* the server said FATAL while we were idle */
};

/* Copies the first line of text (at most cap-1 bytes) into out. */
static const char *first_line(const char *text, char *out, size_t cap)
{
	size_t n = 0;

	if (!text)
		text = "";
	while (text[n] && text[n] != '\n' && n + 1 < cap)
		n++;
	memcpy(out, text, n);
	out[n] = '\0';
	return out;
}

static bool is_connected(const struct db *db)
{
	return db->conn && PQstatus(db->conn) == CONNECTION_OK;
}

static const char *conn_error(const struct db *db, char *out, size_t cap)
{
	return first_line(db->conn ? PQerrorMessage(db->conn) : "out of memory",
			  out, cap);
}

/* Index of keyword in the NULL-terminated keywords, or -1. */
static int find_keyword(const struct db *db, const char *keyword)
{
	for (int i = 0; db->keywords[i]; i++)
		if (strcmp(db->keywords[i], keyword) == 0)
			return i;
	return -1;
}

static void add_param(struct db *db, int *n, const char *keyword,
		      const char *value)
{
	db->keywords[*n] = keyword;
	db->values[*n] = value;
	(*n)++;
	db->keywords[*n] = NULL;
	db->values[*n] = NULL;
}

/* Adds a statement_timeout to the server options unless one is given. */
static int add_statement_timeout(struct db *db, int *n)
{
	int i = find_keyword(db, "options");
	const char *old = i >= 0 ? db->values[i] : "";
	size_t len;

	if (strstr(old, "statement_timeout"))
		return 0;
	len = strlen(old) + 1 + sizeof(STATEMENT_TIMEOUT_OPTION);
	db->options = malloc(len);
	if (!db->options)
		return ERR_NOMEM;
	snprintf(db->options, len, "%s%s%s", old, *old ? " " : "",
		 STATEMENT_TIMEOUT_OPTION);
	if (i >= 0)
		db->values[i] = db->options;
	else
		add_param(db, n, "options", db->options);
	return 0;
}

/* Fills keywords/values from conninfo plus the defaults db_open adds. */
static int build_params(struct db *db, const char *conninfo)
{
	char *errmsg = NULL;
	char line[256];
	size_t count = 0;
	int n = 0;

	db->parsed = PQconninfoParse(conninfo, &errmsg);
	if (!db->parsed && !errmsg)
		return ERR_NOMEM;
	if (!db->parsed) {
		log_err(NULL, "database connection string is invalid error=%s",
			first_line(errmsg, line, sizeof(line)));
		PQfreemem(errmsg);
		return ERR_INVALID;
	}
	for (PQconninfoOption *o = db->parsed; o->keyword; o++)
		count++;
	/* every parsed keyword, three additions, the terminator */
	db->keywords = calloc(count + 4, sizeof(*db->keywords));
	db->values = calloc(count + 4, sizeof(*db->values));
	if (!db->keywords || !db->values)
		return ERR_NOMEM;
	for (PQconninfoOption *o = db->parsed; o->keyword; o++)
		if (o->val && *o->val)
			add_param(db, &n, o->keyword, o->val);
	if (find_keyword(db, "connect_timeout") < 0)
		add_param(db, &n, "connect_timeout", DEFAULT_CONNECT_TIMEOUT);
	if (find_keyword(db, "application_name") < 0)
		add_param(db, &n, "application_name", DEFAULT_APPLICATION_NAME);
	return add_statement_timeout(db, &n);
}

/*
 * Server notices go to the log (at debug: they are chatter like "already
 * exists, skipping"), not raw onto stderr. An error the server sends to an
 * idle connection reaches us here too: a FATAL one is its farewell (it is
 * shutting down, restarting, or was told to end this backend).
 */
static void on_notice(void *arg, const PGresult *res)
{
	struct db *db = arg;
	const char *severity =
		PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char line[256];

	if (severity &&
	    (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
		db->server_left = true;
	log_debug(NULL, "database notice: %s",
		  first_line(PQresultErrorMessage(res), line, sizeof(line)));
}

static void connect_now(struct db *db)
{
	char line[256];

	db->in_txn = false;
	db->server_left = false;
	if (db->conn) {
		PQreset(db->conn);
	} else {
		db->conn = PQconnectdbParams(db->keywords, db->values, 0);
		if (db->conn)
			PQsetNoticeReceiver(db->conn, on_notice, db);
	}
	if (!is_connected(db))
		log_warn(NULL, "database connection failed error=%s",
			 conn_error(db, line, sizeof(line)));
}

int db_open(struct db **out, const char *conninfo)
{
	struct db *db;
	int rc;

	*out = NULL;
	db = calloc(1, sizeof(*db));
	if (!db)
		return ERR_NOMEM;
	rc = build_params(db, conninfo ? conninfo : "");
	if (rc)
		goto out_close;
	connect_now(db);
	*out = db;
	return 0;

out_close:
	db_close(db);
	return rc;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	if (db->conn)
		PQfinish(db->conn);
	PQconninfoFree(db->parsed);
	free(db->keywords);
	free(db->values);
	free(db->options);
	free(db);
}

/*
 * Reads what the server sent while the connection sat idle, without
 * blocking: a server that shut down or restarted, or ended this backend,
 * has said so (a FATAL message, then the end of the stream) before we send
 * a statement on a connection that is gone. Such a connection is replaced.
 */
static void notice_closed(struct db *db)
{
	/* The farewell and the end of the stream may come in two reads:
	 * keep reading while the socket has something to say. */
	for (int i = 0; i < 4 && is_connected(db) && !db->server_left; i++) {
		struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};

		if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
			break;
		if (!PQconsumeInput(db->conn))
			return; /* the status is now bad: db_ensure reconnects */
		PQisBusy(db->conn); /* parses it: a FATAL reaches on_notice */
	}
	if (db->server_left && is_connected(db)) {
		log_notice(NULL, "database server ended the connection");
		connect_now(db);
	}
}

int db_ensure(struct db *db)
{
	if (!db->in_txn)
		notice_closed(db);
	if (is_connected(db))
		return 0;
	/* A transaction never continues on a new connection: it is gone. */
	if (db->in_txn)
		return ERR_UNAVAILABLE;
	connect_now(db);
	if (!is_connected(db))
		return ERR_UNAVAILABLE;
	log_notice(NULL, "database connection established");
	return 0;
}

PGconn *db_conn(struct db *db)
{
	return db->conn;
}

/* The error_code of a failed statement's SQLSTATE. */
static int map_sqlstate(const char *state)
{
	static const struct {
		const char *prefix;
		int code;
	} map[] = {
		{"23505", ERR_CONFLICT},    /* unique_violation */
		{"23P01", ERR_CONFLICT},    /* exclusion_violation */
		{"23", ERR_INVALID},        /* not-null, foreign key, check */
		{"22", ERR_INVALID},        /* data exception */
		{"57014", ERR_TIMEOUT},     /* query_canceled */
		{"55P03", ERR_TIMEOUT},     /* lock_not_available */
		{"08", ERR_UNAVAILABLE},    /* connection exception */
		{"57P", ERR_UNAVAILABLE},   /* shutdown, crash, starting up */
		{"53", ERR_UNAVAILABLE},    /* insufficient resources */
		{"40001", ERR_UNAVAILABLE}, /* serialization failure: retry */
		{"40P01", ERR_UNAVAILABLE}, /* deadlock detected: retry */
	};

	if (!state)
		return ERR_INTERNAL;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(state, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].code;
	return ERR_INTERNAL;
}

static const char *field_or_dash(const PGresult *res, int field)
{
	const char *v = PQresultErrorField(res, field);

	return v && *v ? v : "-";
}

/*
 * Logs a failed statement: SQLSTATE and the names of what it hit, never the
 * parameters. Messages of data exceptions (22xxx), raised errors (P0001) and
 * most others may quote the rejected input, which may be personal data, so
 * for them only the column and type are written.
 */
static void log_failure(const PGresult *res, const char *state)
{
	char msg[256];

	/* Only the classes whose messages name objects, never values, are
	 * written in words: integrity (23), transaction (40), operator (57),
	 * connection (08). */
	if (!state || (strncmp(state, "23", 2) != 0 &&
		       strncmp(state, "40", 2) != 0 &&
		       strncmp(state, "57", 2) != 0 &&
		       strncmp(state, "08", 2) != 0)) {
		log_warn(NULL,
			 "database statement failed sqlstate=%s table=%s "
			 "column=%s datatype=%s",
			 state ? state : "-",
			 field_or_dash(res, PG_DIAG_TABLE_NAME),
			 field_or_dash(res, PG_DIAG_COLUMN_NAME),
			 field_or_dash(res, PG_DIAG_DATATYPE_NAME));
		return;
	}
	log_warn(NULL,
		 "database statement failed sqlstate=%s error=%s table=%s "
		 "constraint=%s",
		 state ? state : "-",
		 first_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
			    msg, sizeof(msg)),
		 field_or_dash(res, PG_DIAG_TABLE_NAME),
		 field_or_dash(res, PG_DIAG_CONSTRAINT_NAME));
}

/* 0 for a successful result, else the mapped error (logged). */
static int result_code(struct db *db, const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	const char *state;
	char line[256];

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	if (!is_connected(db)) {
		log_warn(NULL, "database connection lost error=%s",
			 conn_error(db, line, sizeof(line)));
		return ERR_UNAVAILABLE;
	}
	if (!res) {
		log_err(NULL, "database call failed error=%s",
			conn_error(db, line, sizeof(line)));
		return ERR_NOMEM;
	}
	if (st != PGRES_FATAL_ERROR && st != PGRES_NONFATAL_ERROR) {
		log_err(NULL, "database statement gave unexpected status=%s",
			PQresStatus(st));
		return ERR_INTERNAL;
	}
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	log_failure(res, state);
	return map_sqlstate(state);
}

/*
 * Runs sql (parameterised, or a multi-statement script when script is
 * true). Outside a transaction the connection is re-established first;
 * inside one, a lost connection fails the statement.
 */
static int run(struct db *db, const char *sql, bool script, int nparams,
	       const char *const *params, const int *lengths,
	       const int *formats, PGresult **res_out)
{
	PGresult *res;
	int rc;

	if (res_out)
		*res_out = NULL;
	if (!sql || nparams < 0 || (nparams > 0 && !params))
		return ERR_INTERNAL;
	rc = db_ensure(db);
	if (rc)
		return rc;
	if (script)
		res = PQexec(db->conn, sql);
	else
		res = PQexecParams(db->conn, sql, nparams, NULL, params,
				   lengths, formats, 0);
	rc = result_code(db, res);
	if (rc || !res_out)
		PQclear(res);
	else
		*res_out = res;
	return rc;
}

int db_exec(struct db *db, const char *sql, int nparams,
	    const char *const *params, PGresult **res_out)
{
	return run(db, sql, false, nparams, params, NULL, NULL, res_out);
}

int db_exec_binary(struct db *db, const char *sql, int nparams,
		   const char *const *params, const int *lengths,
		   const int *formats, PGresult **res_out)
{
	return run(db, sql, false, nparams, params, lengths, formats,
		   res_out);
}

bool db_ping(struct db *db)
{
	int rc;

	if (!db)
		return false;
	rc = db_exec(db, "SELECT 1", 0, NULL, NULL);

	/* The first statement after a server restart finds the old
	 * connection dead; one more try reconnects. */
	if (rc == ERR_UNAVAILABLE && !db->in_txn)
		rc = db_exec(db, "SELECT 1", 0, NULL, NULL);
	return rc == 0;
}

int db_begin(struct db *db)
{
	int rc;

	if (db->in_txn) {
		log_err(NULL, "database transaction begun twice");
		return ERR_INTERNAL;
	}
	rc = db_exec(db, "BEGIN", 0, NULL, NULL);
	if (!rc)
		db->in_txn = true;
	return rc;
}

int db_commit(struct db *db)
{
	PGresult *res;
	int rc;

	if (!db->in_txn) {
		log_err(NULL, "database commit outside a transaction");
		return ERR_INTERNAL;
	}
	if (!is_connected(db)) {
		db->in_txn = false;
		return ERR_UNAVAILABLE;
	}
	if (PQtransactionStatus(db->conn) == PQTRANS_INERROR) {
		log_err(NULL, "database commit of a failed transaction");
		db_rollback(db);
		return ERR_INTERNAL;
	}
	rc = db_exec(db, "COMMIT", 0, NULL, &res);
	db->in_txn = false;
	if (rc)
		return rc;
	/* PostgreSQL answers COMMIT of an aborted transaction "ROLLBACK". */
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		log_err(NULL, "database commit rolled back status=%s",
			PQcmdStatus(res));
		rc = ERR_INTERNAL;
	}
	PQclear(res);
	return rc;
}

void db_rollback(struct db *db)
{
	PGresult *res;
	char line[256];

	if (!db || !db->in_txn)
		return;
	db->in_txn = false;
	if (!is_connected(db))
		return;
	res = PQexec(db->conn, "ROLLBACK");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		log_warn(NULL, "database rollback failed error=%s",
			 conn_error(db, line, sizeof(line)));
	PQclear(res);
}

/* ---- migrations ---- */

/* Takes (lock true) or releases the session lock serialising migrations of
 * schema. */
static int migrate_lock(struct db *db, const char *schema, bool lock)
{
	const char *params[] = {schema};

	return db_exec(db,
		       lock ? "SELECT pg_advisory_lock("
			      "hashtext('creneau.migrate'), hashtext($1))"
			    : "SELECT pg_advisory_unlock("
			      "hashtext('creneau.migrate'), hashtext($1))",
		       1, params, NULL);
}

/* Runs "<prefix><ident><suffix>" (ident already quoted). */
static int exec_with_ident(struct db *db, const char *prefix,
			   const char *ident, const char *suffix, int nparams,
			   const char *const *params, PGresult **res_out)
{
	size_t len = strlen(prefix) + strlen(ident) + strlen(suffix) + 1;
	char *sql = malloc(len);
	int rc;

	if (!sql)
		return ERR_NOMEM;
	snprintf(sql, len, "%s%s%s", prefix, ident, suffix);
	rc = db_exec(db, sql, nparams, params, res_out);
	free(sql);
	return rc;
}

static int is_applied(struct db *db, const char *ident, const char *name,
		      bool *applied_out)
{
	const char *params[] = {name};
	PGresult *res;
	int rc;

	rc = exec_with_ident(db, "SELECT 1 FROM ", ident,
			     ".schema_migrations WHERE name = $1", 1, params,
			     &res);
	if (rc)
		return rc;
	*applied_out = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/*
 * Applies one migration and records it, in one transaction. The schema is
 * put first on the search_path for the transaction, so unqualified names
 * land in it whatever the role's settings.
 */
static int apply_one(struct db *db, const char *ident, const char *name,
		     const char *sql)
{
	const char *path[] = {ident};
	const char *record[] = {name};
	int rc;

	rc = db_begin(db);
	if (rc)
		return rc;
	rc = db_exec(db,
		     "SELECT set_config('search_path', $1 || ', ' || "
		     "current_setting('search_path'), true)",
		     1, path, NULL);
	if (!rc)
		rc = run(db, sql, true, 0, NULL, NULL, NULL, NULL);
	if (!rc)
		rc = exec_with_ident(db, "INSERT INTO ", ident,
				     ".schema_migrations (name) VALUES ($1)",
				     1, record, NULL);
	if (rc) {
		db_rollback(db);
		return rc;
	}
	return db_commit(db);
}

static int apply_list(struct db *db, const char *ident, const char *schema,
		      const char *prefix, const struct db_migration *list,
		      size_t n)
{
	char name[MIGRATION_NAME_MAX];
	bool applied;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (!list[i].name || !list[i].sql)
			continue; /* the empty array's placeholder */
		if ((size_t)snprintf(name, sizeof(name), "%s%s", prefix,
				     list[i].name) >= sizeof(name)) {
			log_err(NULL, "migration name too long schema=%s",
				schema);
			return ERR_INVALID;
		}
		rc = is_applied(db, ident, name, &applied);
		if (rc)
			return rc;
		if (applied)
			continue;
		rc = apply_one(db, ident, name, list[i].sql);
		if (rc) {
			log_err(NULL, "migration failed schema=%s name=%s "
				      "error=%s",
				schema, name, error_str(rc));
			return rc;
		}
		log_notice(NULL, "migration applied schema=%s name=%s", schema,
			   name);
	}
	return 0;
}

/* Everything db_migrate does once it holds the lock. */
static int migrate_locked(struct db *db, const char *schema,
			  const char *ident,
			  const struct db_migration *migrations, size_t n)
{
	int rc;

	rc = exec_with_ident(db, "CREATE TABLE IF NOT EXISTS ", ident,
			     ".schema_migrations (name text PRIMARY KEY, "
			     "applied_at timestamptz NOT NULL DEFAULT now())",
			     0, NULL, NULL);
	if (!rc)
		rc = apply_list(db, ident, schema, "common/",
				events_migrations, events_migrations_count);
	if (!rc)
		rc = apply_list(db, ident, schema, "", migrations, n);
	return rc;
}

int db_migrate(struct db *db, const char *schema,
	       const struct db_migration *migrations, size_t n)
{
	char *ident;
	int rc;

	if (!schema || !*schema || db->in_txn)
		return ERR_INTERNAL;
	rc = db_ensure(db);
	if (rc)
		return rc;
	ident = PQescapeIdentifier(db->conn, schema, strlen(schema));
	if (!ident)
		return ERR_NOMEM;
	/* Waiting for another replica's migrations, and a long migration,
	 * are not the statement timeout's business. */
	rc = db_exec(db, "SET statement_timeout = 0", 0, NULL, NULL);
	if (rc)
		goto out_free_ident;
	rc = migrate_lock(db, schema, true);
	if (rc)
		goto out_reset_timeout;
	rc = migrate_locked(db, schema, ident, migrations, n);
	if (is_connected(db) && migrate_lock(db, schema, false))
		log_warn(NULL, "migration lock release failed schema=%s",
			 schema);
out_reset_timeout:
	if (is_connected(db) &&
	    db_exec(db, "RESET statement_timeout", 0, NULL, NULL))
		log_warn(NULL, "statement timeout reset failed");
out_free_ident:
	PQfreemem(ident);
	/* A lost database is worth waiting for; anything else is a bug. */
	if (rc && rc != ERR_UNAVAILABLE)
		rc = ERR_INTERNAL;
	return rc;
}
