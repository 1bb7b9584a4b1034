/* main.c - the gdpr-retention daemon: retention sweeps, subject requests, consents and grants. */
#include "service.h"

extern const struct db_migration gdpr_retention_migrations[];
extern const size_t gdpr_retention_migrations_count;

int main(int argc, char **argv)
{
	struct service_def def = {
		.name = "gdpr-retention",
		.schema = "gdpr",
		.migrations = gdpr_retention_migrations,
		.n_migrations = gdpr_retention_migrations_count,
		.publishes = true,
	};

	return service_main(&def, argc, argv);
}
