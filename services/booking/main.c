/* main.c - the booking daemon: offerings, opening hours, availability and bookings. */
#include "service.h"

extern const struct db_migration booking_migrations[];
extern const size_t booking_migrations_count;

int main(int argc, char **argv)
{
	struct service_def def = {
		.name = "booking",
		.schema = "booking",
		.migrations = booking_migrations,
		.n_migrations = booking_migrations_count,
		.publishes = true,
	};

	return service_main(&def, argc, argv);
}
