/* main.c - the accounts daemon: accounts, sessions, profiles and the practitioner directory. */
#include "service.h"

extern const struct db_migration accounts_migrations[];
extern const size_t accounts_migrations_count;

int main(int argc, char **argv)
{
	struct service_def def = {
		.name = "accounts",
		.schema = "accounts",
		.migrations = accounts_migrations,
		.n_migrations = accounts_migrations_count,
		.publishes = true,
	};

	return service_main(&def, argc, argv);
}
