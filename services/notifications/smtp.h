/* smtp.h - the mail transports: SMTP through libcurl (smtp://, smtps://, STARTTLS) and file://DIR. */
#ifndef CRENEAU_NOTIFICATIONS_SMTP_H
#define CRENEAU_NOTIFICATIONS_SMTP_H

#include <stddef.h>
#include "error.h"

struct smtp_transport;

enum smtp_outcome {
	SMTP_SENT,   /* accepted by the server (or written to the directory) */
	SMTP_RETRY,  /* temporary: 4xx, refused connection, time-out */
	SMTP_FAILED, /* permanent: a 5xx answer; reason says why */
};

struct smtp_result {
	enum smtp_outcome outcome;
	long code;        /* last SMTP reply code, 0 if none */
	char reason[256]; /* for the delivery log; no personal data */
};

struct smtp_options {
	const char *url;      /* smtp://host:port, smtps://host:port, file://DIR */
	const char *username; /* "" or NULL: no authentication */
	const char *password;
	const char *tls;      /* "try" (STARTTLS when offered), "require", "off" */
	long timeout_ms;      /* whole transaction */
	const char *ca_file;  /* PEM CA bundle to verify the server; "" or
				 NULL: the system's */
};

/*
 * smtp_open - a transport for opt (strings copied). For file:// the
 * directory is created if missing. ERR_INVALID for an unknown scheme or an
 * unusable directory, ERR_NOMEM. One thread uses a transport at a time (it
 * keeps the SMTP connection open between messages).
 */
int smtp_open(struct smtp_transport **out, const struct smtp_options *opt)
	WARN_UNUSED;

/* smtp_close - closes the connection and frees; NULL is a no-op. */
void smtp_close(struct smtp_transport *t);

/*
 * smtp_send - delivers data (a whole RFC 5322 message with CRLF line ends)
 * from envelope sender `from` to recipient `to`. id names the message: the
 * file transport writes DIR/<id>.eml atomically (temporary file, fsync,
 * rename), so sending the same id twice leaves one file. The outcome is in
 * *res; the return value is 0 unless the arguments are bad (ERR_INVALID).
 */
int smtp_send(struct smtp_transport *t, const char *from, const char *to,
	      const char *id, const char *data, size_t len,
	      struct smtp_result *res) WARN_UNUSED;

#endif
