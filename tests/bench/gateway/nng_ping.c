/* nng_ping.c - the ceiling for the gateway's benchmark: nng's HTTP server
 * answering GET /v1/ping with the gateway's headers and nothing else (no
 * routing, no request id, no logging, no metrics).
 * Built and run by bench.py: nng_ping <port> */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

static const char *const headers[][2] = {
	{"X-Request-Id", "00000000-0000-4000-8000-000000000000"},
	{"Date", "Thu, 01 Jan 2026 00:00:00 GMT"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	{"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"},
	{"Cache-Control", "no-store"},
	{"Content-Type", "application/json"},
};

static void ping(nng_aio *aio)
{
	static const char body[] = "{\"status\":\"ok\"}";
	nng_http_res *res;

	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
		nng_http_res_set_header(res, headers[i][0], headers[i][1]);
	nng_http_res_set_data(res, body, sizeof(body) - 1);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

int main(int argc, char **argv)
{
	char address[64];
	nng_http_server *server;
	nng_http_handler *handler;
	nng_url *url;
	sigset_t stop;
	int sig;

	if (argc != 2) {
		fprintf(stderr, "usage: nng_ping <port>\n");
		return 2;
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	snprintf(address, sizeof(address), "http://127.0.0.1:%s", argv[1]);
	if (nng_url_parse(&url, address) != 0 ||
	    nng_http_server_hold(&server, url) != 0 ||
	    nng_http_handler_alloc(&handler, "/v1/ping", ping) != 0 ||
	    nng_http_server_add_handler(server, handler) != 0 ||
	    nng_http_server_start(server) != 0) {
		fprintf(stderr, "nng_ping: cannot serve %s\n", address);
		return 1;
	}
	sigwait(&stop, &sig);
	nng_http_server_stop(server);
	nng_http_server_release(server);
	nng_url_free(url);
	return 0;
}
