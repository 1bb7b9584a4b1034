/* test_db.c - common/db against a real PostgreSQL (CRENEAU_TEST_PG). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "db.h"
#include "events.h"
#include "log.h"

/* The scratch database, or NULL when the tests are skipped. */
static const char *pg;
static struct db *admin;
static char schema[64];
static char conninfo[1024];
static int schema_serial;

/* ---- fixture: one fresh schema per test ---- */

static void admin_exec(const char *sql)
{
	assert_int_equal(db_exec(admin, sql, 0, NULL, NULL), 0);
}

static int setup(void **state)
{
	char sql[160];

	if (!pg)
		return 0;
	snprintf(schema, sizeof(schema), "test_db_%ld_%d", (long)getpid(),
		 ++schema_serial);
	snprintf(conninfo, sizeof(conninfo), "%s options='-c search_path=%s'",
		 pg, schema);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	admin_exec(sql);
	return 0;
}

static int teardown(void **state)
{
	char sql[160];

	if (!pg)
		return 0;
	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
	admin_exec(sql);
	return 0;
}

static struct db *open_db(void)
{
	struct db *db;

	assert_int_equal(db_open(&db, conninfo), 0);
	assert_int_equal(db_ensure(db), 0);
	return db;
}

/* The first column of the first row of sql, as a number. */
static long query_long(struct db *db, const char *sql)
{
	PGresult *res;
	long v;

	assert_int_equal(db_exec(db, sql, 0, NULL, &res), 0);
	assert_int_equal(PQntuples(res), 1);
	v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void query_text(struct db *db, const char *sql, char *out, size_t cap)
{
	PGresult *res;

	assert_int_equal(db_exec(db, sql, 0, NULL, &res), 0);
	assert_int_equal(PQntuples(res), 1);
	snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

#define NEED_PG()                                                             \
	do {                                                                  \
		if (!pg)                                                      \
			skip();                                               \
	} while (0)

/* ---- tests ---- */

static void test_open_bad_conninfo(void **state)
{
	struct db *db = (struct db *)1;

	assert_int_equal(db_open(&db, "host='unterminated"), ERR_INVALID);
	assert_null(db);
	assert_int_equal(db_open(&db, "nonsense_keyword=1"), ERR_INVALID);
	db_close(NULL);
}

static void test_database_down(void **state)
{
	struct db *db;

	/* Nothing listens on port 1: a handle anyway, and clean failures. */
	assert_int_equal(db_open(&db, "host=127.0.0.1 port=1 dbname=x "
				      "connect_timeout=2"),
			 0);
	assert_non_null(db);
	assert_int_equal(db_ensure(db), ERR_UNAVAILABLE);
	assert_int_equal(db_exec(db, "SELECT 1", 0, NULL, NULL),
			 ERR_UNAVAILABLE);
	assert_int_equal(db_begin(db), ERR_UNAVAILABLE);
	db_rollback(db);
	assert_false(db_ping(db));
	assert_int_equal(db_migrate(db, "x", NULL, 0), ERR_UNAVAILABLE);
	db_close(db);
}

static void test_connection_defaults(void **state)
{
	char text[64];
	char other[1200];
	struct db *db;

	NEED_PG();
	db = open_db();
	query_text(db, "SHOW statement_timeout", text, sizeof(text));
	assert_string_equal(text, "30s");
	query_text(db, "SHOW application_name", text, sizeof(text));
	assert_string_equal(text, "creneau");
	query_text(db, "SELECT current_schema()", text, sizeof(text));
	assert_string_equal(text, schema);
	assert_true(db_ping(db));
	db_close(db);

	/* What the connection string says wins. */
	snprintf(other, sizeof(other),
		 "%s application_name=billing "
		 "options='-c search_path=%s -c statement_timeout=5s'",
		 pg, schema);
	assert_int_equal(db_open(&db, other), 0);
	query_text(db, "SHOW statement_timeout", text, sizeof(text));
	assert_string_equal(text, "5s");
	query_text(db, "SHOW application_name", text, sizeof(text));
	assert_string_equal(text, "billing");
	db_close(db);
}

static void test_errors_mapped(void **state)
{
	struct db *db;
	const char *p[2];

	NEED_PG();
	db = open_db();
	assert_int_equal(
		db_exec(db,
			"CREATE TABLE parent (id int PRIMARY KEY);"
			"CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL "
			"CHECK (n > 0), parent int REFERENCES parent (id), "
			"b box, EXCLUDE USING gist (b WITH &&))",
			0, NULL, NULL),
		ERR_INTERNAL); /* several statements: PQexecParams refuses */
	db_close(db);
	db = open_db();
	assert_int_equal(db_exec(db, "CREATE TABLE parent (id int PRIMARY KEY)",
				 0, NULL, NULL),
			 0);
	assert_int_equal(
		db_exec(db,
			"CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL "
			"CHECK (n > 0), parent int REFERENCES parent (id), "
			"b box, EXCLUDE USING gist (b WITH &&))",
			0, NULL, NULL),
		0);
	p[0] = "1";
	p[1] = "5";
	assert_int_equal(db_exec(db, "INSERT INTO t (id, n) VALUES ($1, $2)",
				 2, p, NULL),
			 0);
	/* unique */
	assert_int_equal(db_exec(db, "INSERT INTO t (id, n) VALUES ($1, $2)",
				 2, p, NULL),
			 ERR_CONFLICT);
	/* exclusion */
	assert_int_equal(db_exec(db,
				 "INSERT INTO t (id, n, b) VALUES "
				 "(10, 1, '((0,0),(2,2))'), "
				 "(11, 1, '((1,1),(3,3))')",
				 0, NULL, NULL),
			 ERR_CONFLICT);
	/* bad input text for the type */
	p[0] = "not a number";
	assert_int_equal(db_exec(db, "INSERT INTO t (id, n) VALUES ($1, $2)",
				 2, p, NULL),
			 ERR_INVALID);
	/* not-null, check, foreign key, out of range */
	p[0] = "2";
	p[1] = NULL;
	assert_int_equal(db_exec(db, "INSERT INTO t (id, n) VALUES ($1, $2)",
				 2, p, NULL),
			 ERR_INVALID);
	p[1] = "-1";
	assert_int_equal(db_exec(db, "INSERT INTO t (id, n) VALUES ($1, $2)",
				 2, p, NULL),
			 ERR_INVALID);
	assert_int_equal(db_exec(db,
				 "INSERT INTO t (id, n, parent) "
				 "VALUES (3, 1, 42)",
				 0, NULL, NULL),
			 ERR_INVALID);
	p[1] = "99999999999";
	assert_int_equal(db_exec(db, "INSERT INTO t (id, n) VALUES ($1, $2)",
				 2, p, NULL),
			 ERR_INVALID);
	/* a bug in the SQL */
	assert_int_equal(db_exec(db, "SELEC 1", 0, NULL, NULL), ERR_INTERNAL);
	assert_int_equal(db_exec(db, "SELECT no_such_column FROM t", 0, NULL,
				 NULL),
			 ERR_INTERNAL);
	assert_int_equal(db_exec(db, NULL, 0, NULL, NULL), ERR_INTERNAL);
	/* statement timeout */
	assert_int_equal(db_exec(db, "SET statement_timeout = 100", 0, NULL,
				 NULL),
			 0);
	assert_int_equal(db_exec(db, "SELECT pg_sleep(2)", 0, NULL, NULL),
			 ERR_TIMEOUT);
	/* and the connection is fine afterwards; nothing bad was written */
	assert_int_equal(query_long(db, "SELECT count(*) FROM t"), 1);
	db_close(db);
}

static void test_binary_params(void **state)
{
	static const char bytes[] = {0, 1, 2, '\'', 0, (char)0xff};
	const char *p[] = {bytes};
	int lengths[] = {sizeof(bytes)}, formats[] = {1};
	struct db *db;
	PGresult *res;

	NEED_PG();
	db = open_db();
	assert_int_equal(db_exec(db, "CREATE TABLE blob (b bytea)", 0, NULL,
				 NULL),
			 0);
	assert_int_equal(db_exec_binary(db, "INSERT INTO blob VALUES ($1)", 1,
					p, lengths, formats, NULL),
			 0);
	assert_int_equal(db_exec(db, "SELECT length(b), encode(b, 'hex') "
				     "FROM blob",
				 0, NULL, &res),
			 0);
	assert_string_equal(PQgetvalue(res, 0, 0), "6");
	assert_string_equal(PQgetvalue(res, 0, 1), "000102270" "0ff");
	PQclear(res);
	db_close(db);
}

static void test_transactions(void **state)
{
	struct db *db;

	NEED_PG();
	db = open_db();
	assert_int_equal(db_exec(db, "CREATE TABLE t (id int PRIMARY KEY)", 0,
				 NULL, NULL),
			 0);
	/* rolled back: nothing */
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL,
				 NULL),
			 0);
	db_rollback(db);
	assert_int_equal(query_long(db, "SELECT count(*) FROM t"), 0);
	/* committed: there */
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_begin(db), ERR_INTERNAL); /* no nesting */
	assert_int_equal(db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL,
				 NULL),
			 0);
	assert_int_equal(db_commit(db), 0);
	assert_int_equal(query_long(db, "SELECT count(*) FROM t"), 1);
	/* outside a transaction */
	db_rollback(db);
	assert_int_equal(db_commit(db), ERR_INTERNAL);
	/* a failed statement: commit refuses, everything is undone */
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_exec(db, "INSERT INTO t VALUES (2)", 0, NULL,
				 NULL),
			 0);
	assert_int_equal(db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL,
				 NULL),
			 ERR_CONFLICT);
	assert_int_equal(db_commit(db), ERR_INTERNAL);
	assert_int_equal(query_long(db, "SELECT count(*) FROM t"), 1);
	/* commit-time failure (deferred constraint): the transaction ends */
	assert_int_equal(db_exec(db,
				 "CREATE TABLE d (id int UNIQUE "
				 "DEFERRABLE INITIALLY DEFERRED)",
				 0, NULL, NULL),
			 0);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_exec(db, "INSERT INTO d VALUES (1), (1)", 0, NULL,
				 NULL),
			 0);
	assert_int_equal(db_commit(db), ERR_CONFLICT);
	assert_int_equal(query_long(db, "SELECT count(*) FROM d"), 0);
	assert_int_equal(db_begin(db), 0);
	db_rollback(db);
	db_close(db);
}

static int backend_pid(struct db *db)
{
	return PQbackendPID(db_conn(db));
}

static void terminate(int pid)
{
	char sql[80];

	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
	admin_exec(sql);
	/* the backend's exit is asynchronous; wait until it is gone */
	for (int i = 0; i < 100; i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_stat_activity WHERE pid = %d",
			 pid);
		if (query_long(admin, sql) == 0)
			return;
		usleep(20000);
	}
	fail_msg("backend %d did not exit", pid);
}

static void test_connection_lost(void **state)
{
	struct db *db;
	int pid;

	NEED_PG();
	db = open_db();
	assert_int_equal(db_exec(db, "CREATE TABLE t (id int)", 0, NULL, NULL),
			 0);

	/* outside a transaction: the server's farewell on the idle
	 * connection is noticed before the next statement, which runs on a
	 * new connection and succeeds */
	pid = backend_pid(db);
	terminate(pid);
	assert_int_equal(db_exec(db, "SELECT 1", 0, NULL, NULL), 0);
	assert_int_not_equal(backend_pid(db), pid);

	/* inside one: the transaction is gone until rolled back */
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL,
				 NULL),
			 0);
	terminate(backend_pid(db));
	assert_int_equal(db_exec(db, "INSERT INTO t VALUES (2)", 0, NULL,
				 NULL),
			 ERR_UNAVAILABLE);
	assert_int_equal(db_exec(db, "INSERT INTO t VALUES (3)", 0, NULL,
				 NULL),
			 ERR_UNAVAILABLE);
	assert_int_equal(db_ensure(db), ERR_UNAVAILABLE);
	assert_int_equal(db_commit(db), ERR_UNAVAILABLE);
	assert_int_equal(query_long(db, "SELECT count(*) FROM t"), 0);

	/* rollback after the loss, then work again */
	assert_int_equal(db_begin(db), 0);
	terminate(backend_pid(db));
	assert_int_equal(db_exec(db, "INSERT INTO t VALUES (4)", 0, NULL,
				 NULL),
			 ERR_UNAVAILABLE);
	db_rollback(db);
	assert_true(db_ping(db));
	assert_int_equal(query_long(db, "SELECT count(*) FROM t"), 0);

	/* db_ping reconnects by itself */
	terminate(backend_pid(db));
	assert_true(db_ping(db));
	db_close(db);
}

static const struct db_migration service_migrations[] = {
	{"001_first.sql", "CREATE TABLE first (x int);\n"
			  "INSERT INTO first VALUES (1);\n"
			  "-- a comment; with a semicolon\n"
			  "INSERT INTO first VALUES (2);\n"},
	{"002_second.sql", "CREATE TABLE second (y text)"},
};

static void assert_migrated(struct db *db)
{
	char sql[200];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM %s.schema_migrations", schema);
	assert_int_equal(query_long(db, sql),
			 (long)events_migrations_count + 2);
	assert_int_equal(query_long(db, "SELECT count(*) FROM first"), 2);
	assert_int_equal(query_long(db, "SELECT count(*) FROM second"), 0);
	assert_int_equal(query_long(db, "SELECT count(*) FROM events_outbox"),
			 0);
	assert_int_equal(query_long(db, "SELECT last_seq FROM events_head"), 0);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM %s.schema_migrations "
		 "WHERE name = 'common/001_events.sql'",
		 schema);
	assert_int_equal(query_long(db, sql), 1);
}

static void test_migrate_twice(void **state)
{
	struct db *db;

	NEED_PG();
	db = open_db();
	assert_int_equal(db_migrate(db, schema, service_migrations, 2), 0);
	assert_migrated(db);
	assert_int_equal(db_migrate(db, schema, service_migrations, 2), 0);
	assert_migrated(db);
	/* statement_timeout is back to its default afterwards */
	{
		char text[32];

		query_text(db, "SHOW statement_timeout", text, sizeof(text));
		assert_string_equal(text, "30s");
	}
	db_close(db);
}

struct migrate_job {
	int rc;
};

static void *migrate_thread(void *arg)
{
	struct migrate_job *job = arg;
	struct db *db;

	job->rc = db_open(&db, conninfo);
	if (job->rc)
		return NULL;
	job->rc = db_migrate(db, schema, service_migrations, 2);
	db_close(db);
	return NULL;
}

static void test_migrate_concurrently(void **state)
{
	struct migrate_job jobs[4];
	pthread_t threads[4];
	struct db *db;

	NEED_PG();
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&threads[i], NULL,
						migrate_thread, &jobs[i]),
				 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(jobs[i].rc, 0);
	}
	db = open_db();
	assert_migrated(db);
	db_close(db);
}

static void test_migrate_failure(void **state)
{
	static const struct db_migration broken[] = {
		{"001_ok.sql", "CREATE TABLE ok (x int)"},
		{"002_broken.sql", "CREATE TABLE half (x int);\n"
				   "INSERT INTO half VALUES (1);\n"
				   "SELEC oops;\n"},
		{"003_never.sql", "CREATE TABLE never (x int)"},
	};
	struct db *db;
	char sql[200];

	NEED_PG();
	db = open_db();
	assert_int_equal(db_migrate(db, schema, broken, 3), ERR_INTERNAL);
	snprintf(sql, sizeof(sql),
		 "SELECT string_agg(name, ',' ORDER BY name) "
		 "FROM %s.schema_migrations",
		 schema);
	{
		char names[200];

		query_text(db, sql, names, sizeof(names));
		assert_string_equal(names, "001_ok.sql,common/001_events.sql");
	}
	assert_int_equal(query_long(db, "SELECT count(*) FROM pg_tables "
					"WHERE tablename IN ('half', 'never')"),
			 0);
	/* the lock was released: a fixed migration goes through */
	assert_int_equal(db_migrate(db, schema, broken, 1), 0);
	assert_int_equal(db_migrate(db, "", broken, 1), ERR_INTERNAL);
	db_close(db);
}

static void test_migrate_qualifies_schema(void **state)
{
	/* A connection whose search_path is elsewhere still migrates the
	 * schema it is told, never the other. */
	static const struct db_migration m[] = {
		{"001_here.sql", "CREATE TABLE here (x int)"},
	};
	char other[1200];
	struct db *db;
	char sql[200];

	NEED_PG();
	snprintf(other, sizeof(other), "%s options='-c search_path=public'",
		 pg);
	assert_int_equal(db_open(&db, other), 0);
	assert_int_equal(db_migrate(db, schema, m, 1), 0);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM pg_tables WHERE schemaname = '%s' "
		 "AND tablename IN ('here', 'events_outbox')",
		 schema);
	assert_int_equal(query_long(db, sql), 2);
	assert_int_equal(query_long(db, "SELECT count(*) FROM pg_tables "
					"WHERE schemaname = 'public' AND "
					"tablename = 'here'"),
			 0);
	db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_bad_conninfo),
		cmocka_unit_test(test_database_down),
		cmocka_unit_test_setup_teardown(test_connection_defaults, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_errors_mapped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_binary_params, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_connection_lost, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_migrate_twice, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_migrate_concurrently,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_failure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_migrate_qualifies_schema,
						setup, teardown),
	};
	const char *ci = getenv("CI");
	int rc;

	if (log_init("test_db", getenv("CRENEAU_TEST_LOG") ? "debug" : "err"))
		return 1;
	pg = getenv("CRENEAU_TEST_PG");
	if (!pg || !*pg) {
		pg = NULL;
		if (ci && strcmp(ci, "true") == 0) {
			fprintf(stderr, "test_db: CRENEAU_TEST_PG is not set "
					"(a libpq connection string of a "
					"scratch PostgreSQL); required when "
					"CI=true\n");
			return 1;
		}
		fprintf(stderr, "test_db: CRENEAU_TEST_PG is not set: the "
				"database tests are skipped\n");
	} else {
		if (db_open(&admin, pg) || db_ensure(admin)) {
			fprintf(stderr, "test_db: cannot connect to "
					"CRENEAU_TEST_PG\n");
			return 1;
		}
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	db_close(admin);
	return rc;
}
