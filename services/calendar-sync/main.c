/* main.c - the calendar-sync daemon: Google Calendar link, import and busy intervals. */
#include "service.h"

extern const struct db_migration calendar_sync_migrations[];
extern const size_t calendar_sync_migrations_count;

int main(int argc, char **argv)
{
	struct service_def def = {
		.name = "calendar-sync",
		.schema = "calendar",
		.migrations = calendar_sync_migrations,
		.n_migrations = calendar_sync_migrations_count,
		.publishes = true,
	};

	return service_main(&def, argc, argv);
}
