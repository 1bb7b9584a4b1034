/* main.c - the gateway daemon: reads its settings, opens its RPC clients and HTTP listener, runs until SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "routes.h"
#include "rpc.h"
#include "secure.h"
#include "service.h"

/* how long in-flight requests get to finish after SIGTERM, beyond their
 * own RPC deadline */
#define DRAIN_MARGIN_MS 2000

static char *listen_url;
static uint8_t *rpc_key;
static char *service_urls[ROUTE_N_SERVICES];
static char *log_level;
static long request_timeout_ms;
static long max_body;

static const struct config_setting settings[] = {
    {"CRENEAU_HTTP_LISTEN", CONFIG_URLS, "http://127.0.0.1:8080", false,
     "HTTP address to listen on (behind a TLS reverse proxy)", &listen_url, 0,
     0},
    {"CRENEAU_RPC_KEY", CONFIG_KEY, NULL, true,
     "deployment key authenticating RPC envelopes (64 hex digits)", &rpc_key, 0,
     0},
    {"CRENEAU_ACCOUNTS_RPC", CONFIG_URLS, NULL, false,
     "nng URLs of the accounts replicas, comma-separated",
     &service_urls[ROUTE_ACCOUNTS], 0, 0},
    {"CRENEAU_BOOKING_RPC", CONFIG_URLS, NULL, false,
     "nng URLs of the booking replicas, comma-separated",
     &service_urls[ROUTE_BOOKING], 0, 0},
    {"CRENEAU_CALENDAR_SYNC_RPC", CONFIG_URLS, NULL, false,
     "nng URLs of the calendar-sync replicas, comma-separated",
     &service_urls[ROUTE_CALENDAR_SYNC], 0, 0},
    {"CRENEAU_GDPR_RETENTION_RPC", CONFIG_URLS, NULL, false,
     "nng URLs of the gdpr-retention replicas, comma-separated",
     &service_urls[ROUTE_GDPR_RETENTION], 0, 0},
    {"CRENEAU_NOTIFICATIONS_RPC", CONFIG_URLS, NULL, false,
     "nng URLs of the notifications replicas, comma-separated",
     &service_urls[ROUTE_NOTIFICATIONS], 0, 0},
    {"CRENEAU_LOG_LEVEL", CONFIG_STRING, "info", false,
     "lowest level logged: debug, info, notice, warning, err", &log_level, 0,
     0},
    {"CRENEAU_REQUEST_TIMEOUT_MS", CONFIG_INT, "5000", false,
     "deadline of each RPC made for a request, in milliseconds",
     &request_timeout_ms, 100, 600000},
    {"CRENEAU_MAX_BODY", CONFIG_INT, "1048576", false,
     "largest request body accepted, in bytes (larger: 413)", &max_body, 0,
     64L * 1024 * 1024},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static int open_clients(struct rpc_client *clients[ROUTE_N_SERVICES])
{
	for (int s = 0; s < ROUTE_N_SERVICES; s++) {
		int rc = rpc_client_open(&clients[s], routes_service_name(s),
					 service_urls[s], rpc_key, "gateway");

		if (rc) {
			log_err(NULL, "rpc client not opened service=%s: %s",
				routes_service_name(s), error_str(rc));
			return rc;
		}
	}
	return 0;
}

static void close_clients(struct rpc_client *clients[ROUTE_N_SERVICES])
{
	for (int s = 0; s < ROUTE_N_SERVICES; s++)
		rpc_client_free(clients[s]);
}

int main(int argc, char **argv)
{
	struct http_config cfg = {0};
	struct http_server *server = NULL;
	sigset_t stop;
	int rc, status = EXIT_FAILURE;

	/* CONFIG_KEY settings land in sodium_malloc'd memory */
	if (secure_init() != 0)
		return EXIT_FAILURE;
	rc = config_load("gateway", settings, N_SETTINGS, argc, argv);
	if (rc == CONFIG_HELP_SHOWN)
		return EXIT_SUCCESS;
	if (rc)
		return EXIT_FAILURE;
	if (log_init("gateway", log_level) != 0) {
		fprintf(stderr, "gateway: CRENEAU_LOG_LEVEL: unknown level\n");
		goto out_free_config;
	}
	service_block_stop_signals(&stop);

	if (open_clients(cfg.clients) != 0)
		goto out_close_clients;
	cfg.listen_url = listen_url;
	cfg.max_body = (size_t)max_body;
	cfg.request_timeout_ms = (int)request_timeout_ms;
	if (http_server_start(&server, &cfg) != 0)
		goto out_close_clients;
	log_notice(NULL, "gateway listening url=%s port=%d", listen_url,
		   http_server_port(server));

	log_notice(NULL, "gateway stopping signal=%d", service_wait_stop(&stop));
	if (!http_server_drain(server,
			       (int)request_timeout_ms + DRAIN_MARGIN_MS))
		log_warn(NULL, "gateway stopped with requests still in flight");
	http_server_free(server);
	status = EXIT_SUCCESS;

out_close_clients:
	close_clients(cfg.clients);
out_free_config:
	config_free(settings, N_SETTINGS);
	return status;
}
