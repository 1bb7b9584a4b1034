/* main.c - the notifications daemon: the e-mail outbox, templates and the newsletter. */
#include "service.h"

extern const struct db_migration notifications_migrations[];
extern const size_t notifications_migrations_count;

int main(int argc, char **argv)
{
	struct service_def def = {
		.name = "notifications",
		.schema = "notify",
		.migrations = notifications_migrations,
		.n_migrations = notifications_migrations_count,
		.publishes = true,
	};

	return service_main(&def, argc, argv);
}
