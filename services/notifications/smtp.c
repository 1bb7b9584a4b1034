/* smtp.c - the mail transports: SMTP through libcurl (smtp://, smtps://, STARTTLS) and file://DIR. */
#include "smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"

struct smtp_transport {
	char *url;
	char *dir; /* file transport: the directory; NULL for SMTP */
	char *username, *password;
	char *ca_file;
	long tls;
	long timeout_ms;
	CURL *curl;
	char last_reply[200]; /* the server's last reply line, for reasons */
};

struct upload {
	const char *data;
	size_t len, off;
};

static int make_dirs(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return ERR_INVALID;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return ERR_INVALID;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return ERR_INVALID;
	return access(tmp, W_OK) ? ERR_INVALID : 0;
}

static long tls_mode(const char *tls)
{
	if (!tls || !*tls || strcmp(tls, "try") == 0)
		return CURLUSESSL_TRY;
	if (strcmp(tls, "require") == 0)
		return CURLUSESSL_ALL;
	if (strcmp(tls, "off") == 0)
		return CURLUSESSL_NONE;
	return -1;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int smtp_open(struct smtp_transport **out, const struct smtp_options *opt)
{
	struct smtp_transport *t;
	int rc = ERR_NOMEM;

	if (!opt->url || tls_mode(opt->tls) < 0)
		return ERR_INVALID;
	t = calloc(1, sizeof(*t));
	if (!t)
		return ERR_NOMEM;
	t->tls = tls_mode(opt->tls);
	t->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 30000;
	t->url = strdup(opt->url);
	if (!t->url)
		goto out_free;
	if (strncmp(opt->url, "file://", 7) == 0) {
		t->dir = strdup(opt->url + 7);
		if (!t->dir)
			goto out_free;
		rc = make_dirs(t->dir);
		if (rc) {
			log_err(NULL, "mail directory unusable errno=%d", errno);
			goto out_free;
		}
	} else if (strncmp(opt->url, "smtp://", 7) == 0 ||
		   strncmp(opt->url, "smtps://", 8) == 0) {
		t->username = dup_or_null(opt->username);
		t->password = dup_or_null(opt->password);
		t->ca_file = dup_or_null(opt->ca_file);
		t->curl = curl_easy_init();
		if (!t->curl)
			goto out_free;
	} else {
		rc = ERR_INVALID;
		goto out_free;
	}
	*out = t;
	return 0;
out_free:
	smtp_close(t);
	return rc;
}

void smtp_close(struct smtp_transport *t)
{
	if (!t)
		return;
	if (t->curl)
		curl_easy_cleanup(t->curl);
	free(t->url);
	free(t->dir);
	free(t->username);
	free(t->ca_file);
	if (t->password) {
		explicit_bzero(t->password, strlen(t->password));
		free(t->password);
	}
	free(t);
}

static bool is_safe_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 128 || id[0] == '.')
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		      *p == '.'))
			return false;
	return true;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static void send_file(struct smtp_transport *t, const char *id,
		      const char *data, size_t len, struct smtp_result *res)
{
	char tmp[4200], path[4200];
	int fd, dfd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", t->dir, id);
	snprintf(path, sizeof(path), "%s/%s.eml", t->dir, id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out_error;
	if (write_all(fd, data, len) || fsync(fd)) {
		close(fd);
		unlink(tmp);
		goto out_error;
	}
	close(fd);
	if (rename(tmp, path)) {
		unlink(tmp);
		goto out_error;
	}
	dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	res->outcome = SMTP_SENT;
	return;
out_error:
	res->outcome = SMTP_RETRY;
	snprintf(res->reason, sizeof(res->reason), "cannot write file: %s",
		 strerror(errno));
}

static size_t read_upload(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/* Keeps the server's last 4xx or 5xx reply line (curl shows replies as
 * headers in). */
static int on_debug(CURL *c, curl_infotype type, char *data, size_t size,
		    void *arg)
{
	struct smtp_transport *t = arg;
	size_t n = size;

	/* the failure, not the "221 Bye" that may follow it */
	if (type != CURLINFO_HEADER_IN || !size ||
	    (data[0] != '4' && data[0] != '5'))
		return 0;
	while (n && (data[n - 1] == '\r' || data[n - 1] == '\n'))
		n--;
	if (n >= sizeof(t->last_reply))
		n = sizeof(t->last_reply) - 1;
	memcpy(t->last_reply, data, n);
	t->last_reply[n] = '\0';
	for (char *p = t->last_reply; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
	return 0;
}

/* 5xx is permanent, except a refused login: that is the operator's to fix,
 * and the messages must wait for it rather than be lost. */
static void classify(CURLcode cc, long code, const char *errbuf,
		     const char *reply, struct smtp_result *res)
{
	res->code = code;
	if (cc == CURLE_OK) {
		res->outcome = SMTP_SENT;
		return;
	}
	if (code >= 500 && code < 600 && cc != CURLE_LOGIN_DENIED)
		res->outcome = SMTP_FAILED;
	else
		res->outcome = SMTP_RETRY;
	if (code && *reply)
		snprintf(res->reason, sizeof(res->reason), "%s: \"%s\" (curl %d)",
			 *errbuf ? errbuf : curl_easy_strerror(cc), reply,
			 (int)cc);
	else
		snprintf(res->reason, sizeof(res->reason), "%s (curl %d)",
			 *errbuf ? errbuf : curl_easy_strerror(cc), (int)cc);
}

static void send_smtp(struct smtp_transport *t, const char *from,
		      const char *to, const char *data, size_t len,
		      struct smtp_result *res)
{
	char errbuf[CURL_ERROR_SIZE] = "", mail_from[300], rcpt[300];
	struct upload u = {.data = data, .len = len};
	struct curl_slist *rcpts = NULL, *tmp;
	CURL *c = t->curl;
	CURLcode cc;
	long code = 0;

	snprintf(mail_from, sizeof(mail_from), "<%s>", from);
	snprintf(rcpt, sizeof(rcpt), "<%s>", to);
	tmp = curl_slist_append(rcpts, rcpt);
	if (!tmp) {
		res->outcome = SMTP_RETRY;
		snprintf(res->reason, sizeof(res->reason), "out of memory");
		return;
	}
	rcpts = tmp;
	curl_easy_setopt(c, CURLOPT_URL, t->url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, mail_from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_USE_SSL, t->tls);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t->timeout_ms);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, t);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	t->last_reply[0] = '\0';
	if (t->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
	if (t->username) {
		curl_easy_setopt(c, CURLOPT_USERNAME, t->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD,
				 t->password ? t->password : "");
	}
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(rcpts);
	classify(cc, code, errbuf, t->last_reply, res);
}

int smtp_send(struct smtp_transport *t, const char *from, const char *to,
	      const char *id, const char *data, size_t len,
	      struct smtp_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!is_safe_id(id) || strlen(from) > 254 || strlen(to) > 254)
		return ERR_INVALID;
	if (t->dir)
		send_file(t, id, data, len, res);
	else
		send_smtp(t, from, to, data, len, res);
	return 0;
}
