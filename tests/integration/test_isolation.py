#!/usr/bin/python3
"""test_isolation - one schema, one role per service: a role does anything in
its own schema and nothing anywhere else (permission denied)."""

import unittest

from creneau_stack import SCHEMAS, Stack, run_tests

ROLES = sorted(SCHEMAS.values())  # accounts booking calendar gdpr notify


class IsolationTest(unittest.TestCase):
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        cls.stack.up()
        # a probe table in every schema, made by its own role
        for schema in ROLES:
            rc, out, err = cls.stack.psql(
                "CREATE TABLE iso_probe (id int PRIMARY KEY, note text);\n"
                "INSERT INTO iso_probe VALUES (1, 'mine');\n", role=schema)
            if rc != 0:
                raise AssertionError("%s: %s" % (schema, err))

    @classmethod
    def tearDownClass(cls):
        if cls.stack:
            cls.stack.down()

    def ok(self, sql, role):
        rc, out, err = self.stack.psql(sql, role=role)
        self.assertEqual(rc, 0, "%s as %s: %s" % (sql, role, err))
        return out

    def denied(self, sql, role, what="permission denied"):
        rc, out, err = self.stack.psql(sql, role=role)
        self.assertNotEqual(rc, 0, "%s as %s succeeded: %s" % (sql, role,
                                                               out))
        self.assertIn(what, err, "%s as %s" % (sql, role))

    def test_own_schema_read_write(self):
        for schema in ROLES:
            with self.subTest(role=schema):
                out = self.ok(
                    "SHOW search_path;\n"
                    "INSERT INTO iso_probe VALUES (2, 'two');\n"
                    "UPDATE iso_probe SET note = 'deux' WHERE id = 2;\n"
                    "SELECT note FROM iso_probe WHERE id = 2;\n"
                    "DELETE FROM iso_probe WHERE id = 2;\n"
                    "SELECT count(*) FROM %s.iso_probe;\n"
                    "CREATE TABLE own_t (x int); DROP TABLE own_t;\n"
                    "CREATE INDEX ON iso_probe (note);\n"
                    "CREATE FUNCTION own_f() RETURNS int LANGUAGE sql "
                    "AS 'SELECT 1'; DROP FUNCTION own_f();\n" % schema,
                    schema)
                self.assertEqual(out.split(), ["%s," % schema, "ext",
                                               "deux", "1"])

    def test_extensions_usable(self):
        # btree_gist: the exclusion constraint a booking table needs
        for schema in ROLES:
            with self.subTest(role=schema):
                self.ok("CREATE TABLE iso_slots (who int, during tstzrange,"
                        " EXCLUDE USING gist (who WITH =, during WITH &&));\n"
                        "INSERT INTO iso_slots VALUES (1, tstzrange("
                        "'2027-03-28 09:00Z', '2027-03-28 10:00Z'));\n"
                        "SELECT encode(digest('x', 'sha256'), 'hex');\n"
                        "DROP TABLE iso_slots;\n", schema)
        self.denied("CREATE TABLE iso_slots (who int, during tstzrange,"
                    " EXCLUDE USING gist (who WITH =, during WITH &&));\n"
                    "INSERT INTO iso_slots VALUES (1, tstzrange("
                    "'2027-03-28 09:00Z', '2027-03-28 10:00Z'));\n"
                    "INSERT INTO iso_slots VALUES (1, tstzrange("
                    "'2027-03-28 09:30Z', '2027-03-28 10:30Z'));\n",
                    "booking", "conflicting key value violates exclusion")
        self.ok("DROP TABLE iso_slots;", "booking")

    def test_other_schemas_denied(self):
        for role in ROLES:
            for other in ROLES:
                if other == role:
                    continue
                with self.subTest(role=role, schema=other):
                    self.denied("SELECT * FROM %s.iso_probe;" % other, role)
                    self.denied("INSERT INTO %s.iso_probe VALUES (9, 'x');"
                                % other, role)
                    self.denied("CREATE TABLE %s.intruder (x int);" % other,
                                role)
                    # the tables the daemon's migrations made, too
                    self.denied("SELECT * FROM %s.schema_migrations;" % other,
                                role)

    def test_nothing_elsewhere(self):
        for role in ROLES:
            with self.subTest(role=role):
                self.denied("CREATE TABLE public.intruder (x int);", role)
                self.denied("CREATE TABLE ext.intruder (x int);", role)
                self.denied("CREATE SCHEMA intruder;", role)
                self.denied("CREATE TEMP TABLE intruder (x int);", role)
                self.denied("CREATE DATABASE intruder;", role)
                self.denied("CREATE ROLE intruder;", role)
                self.denied("SET ROLE postgres;", role)
                other = ROLES[(ROLES.index(role) + 1) % len(ROLES)]
                self.denied("SET ROLE creneau_%s;" % other, role)
                rc, _, err = self.stack.psql("SELECT 1;", role=role,
                                             database="postgres")
                self.assertNotEqual(rc, 0, "%s reached database postgres"
                                    % role)

    def test_migrated_tables_owned_by_their_role(self):
        out = self.ok(
            "SELECT n.nspname, r.rolname, count(*) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_roles r ON r.oid = c.relowner"
            " WHERE n.nspname IN (%s) AND c.relkind IN ('r', 'p', 'S', 'v')"
            " GROUP BY 1, 2 ORDER BY 1, 2;"
            % ", ".join("'%s'" % s for s in ROLES), None)
        rows = [line.split("|") for line in out.split()]
        schemas_seen = set()
        for schema, owner, _count in rows:
            self.assertEqual(owner, "creneau_" + schema, out)
            schemas_seen.add(schema)
        self.assertEqual(schemas_seen, set(ROLES), out)
        # each daemon migrated its own schema
        for schema in ROLES:
            self.ok("SELECT count(*) FROM schema_migrations;", schema)


if __name__ == "__main__":
    run_tests()
