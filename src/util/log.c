/* The library's one logging module: KYSO_DEBUG=0..3 picks the level, KYSO_LOG
 * a file (appended to) instead of stderr. Each call writes whole lines with a
 * timestamp and process/thread id; APDU traces never show PIN data. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* secure_getenv, gettid */
#endif

#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"

#define LOG_LINE_MAX	    2048
#define APDU_BYTES_PER_LINE 32

int kyso_log_level;

/* Guards log_fd, log_inited and the writes, so lines never interleave. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;
static int log_owns_fd;
static int log_inited;

static int parse_level(const char *s)
{
	char *end;
	long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < 0)
		return 0;
	return v > KYSO_LOG_APDU ? KYSO_LOG_APDU : (int)v;
}

void kyso_log_init(void)
{
	const char *path = NULL;
	int level = 0, fd = -1, saved = errno;

	pthread_mutex_lock(&log_lock);
	if (log_inited)
		goto out;
	/* secure_getenv: a setuid program must not let the environment pick a
	 * file for it to write */
	level = parse_level(secure_getenv("KYSO_DEBUG"));
	path = secure_getenv("KYSO_LOG");
	if (level > 0 && path && *path) {
		fd = open(path,
			  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
			  0600);
	}
	if (fd >= 0) {
		log_fd = fd;
		log_owns_fd = 1;
	} else {
		log_fd = STDERR_FILENO;
		log_owns_fd = 0;
	}
	kyso_log_level = level;
	log_inited = 1;
out:
	pthread_mutex_unlock(&log_lock);
	if (level > 0 && path && *path && fd < 0)
		kyso_log(KYSO_LOG_ERR,
			 "cannot open KYSO_LOG, logging to stderr");
	errno = saved;
}

void kyso_log_forked(void)
{
	/* Another thread of the parent may have held the lock at fork time;
	 * in the child nobody will ever release it. */
	pthread_mutex_init(&log_lock, NULL);
}

void kyso_log_fini(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_owns_fd)
		close(log_fd);
	log_fd = STDERR_FILENO;
	log_owns_fd = 0;
	log_inited = 0;
	kyso_log_level = 0;
	pthread_mutex_unlock(&log_lock);
}

static void write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* "2024-05-01T08:30:00.123Z kyso[pid:tid] " */
static size_t stamp(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(
	    out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ kyso[%ld:%ld] ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000L, (long)getpid(), (long)gettid());
	if (n < 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Writes one line; the caller holds log_lock. Control characters (card
 * labels end up in messages) are neutralised so that one call is one line. */
static void emit_locked(const char *msg)
{
	char line[LOG_LINE_MAX];
	size_t n, end = strlen(msg);
	const char *p;

	while (end > 0 && (msg[end - 1] == '\n' || msg[end - 1] == '\r'))
		end--;
	n = stamp(line, sizeof(line));
	for (p = msg; p < msg + end && n < sizeof(line) - 5; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		else if (c < 0x20 || c == 0x7f)
			c = '?';
		line[n++] = (char)c;
	}
	if (p < msg + end) {
		memcpy(line + n, "...", 3);
		n += 3;
	}
	line[n++] = '\n';
	write_all(log_fd, line, n);
}

void kyso_log(int level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;
	int saved = errno;

	if (level <= 0 || level > kyso_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	emit_locked(msg);
	pthread_mutex_unlock(&log_lock);
	errno = saved;
}

int kyso_apdu_is_secret(const uint8_t *cmd, size_t len)
{
	if (!cmd || len < 2)
		return 0;
	switch (cmd[1]) {
	case 0x20: /* VERIFY */
	case 0x21: /* VERIFY, BER-TLV data */
	case 0x24: /* CHANGE REFERENCE DATA */
	case 0x26: /* DISABLE VERIFICATION REQUIREMENT (UICC: PIN) */
	case 0x28: /* ENABLE VERIFICATION REQUIREMENT (UICC: PIN) */
	case 0x2C: /* RESET RETRY COUNTER (PUK and new PIN) */
		return 1;
	default:
		return 0;
	}
}

/* The fields of a command APDU body (what follows the 4 header bytes). */
struct cmd_body {
	int ok;		   /* the body has one of the ISO 7816-3 shapes */
	const uint8_t *lc; /* Lc field as encoded, or NULL */
	size_t lclen;
	const uint8_t *data;
	size_t ndata;
	const uint8_t *le; /* Le field as encoded, or NULL */
	size_t lelen;
};

static void parse_body(const uint8_t *b, size_t n, struct cmd_body *cb)
{
	size_t lc;

	memset(cb, 0, sizeof(*cb));
	cb->ok = 1;
	if (n == 0)
		return;
	if (n == 1) { /* 2S */
		cb->le = b;
		cb->lelen = 1;
		return;
	}
	if (b[0] != 0) {
		lc = b[0];
		if (n == 1 + lc || n == 2 + lc) { /* 3S, 4S */
			cb->lc = b;
			cb->lclen = 1;
			cb->data = b + 1;
			cb->ndata = lc;
			if (n == 2 + lc) {
				cb->le = b + 1 + lc;
				cb->lelen = 1;
			}
			return;
		}
	} else if (n == 3) { /* 2E */
		cb->le = b;
		cb->lelen = 3;
		return;
	} else {
		lc = (size_t)b[1] << 8 | b[2];
		if (lc != 0 && (n == 3 + lc || n == 5 + lc)) { /* 3E, 4E */
			cb->lc = b;
			cb->lclen = 3;
			cb->data = b + 3;
			cb->ndata = lc;
			if (n == 5 + lc) {
				cb->le = b + 3 + lc;
				cb->lelen = 2;
			}
			return;
		}
	}
	cb->ok = 0;
}

/* Appends hex of p[0..n) to s at *pos; s holds cap chars. */
static void put_hex(char *s, size_t cap, size_t *pos, const uint8_t *p,
		    size_t n)
{
	if (*pos + 2 * n + 1 > cap)
		return;
	kyso_hex(p, n, s + *pos);
	*pos += 2 * n;
}

static void put_str(char *s, size_t cap, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put_str(char *s, size_t cap, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(s + *pos, cap - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*pos += (size_t)n < cap - *pos ? (size_t)n : cap - *pos - 1;
}

/* Long data goes on continuation lines of APDU_BYTES_PER_LINE bytes each. */
static void emit_chunks_locked(const char *dir, const uint8_t *p, size_t n)
{
	char line[64 + 2 * APDU_BYTES_PER_LINE];
	size_t off, k, pos;

	for (off = 0; off < n; off += k) {
		k = n - off < APDU_BYTES_PER_LINE ? n - off
						  : APDU_BYTES_PER_LINE;
		pos = 0;
		put_str(line, sizeof(line), &pos, "apdu%s   %04zX: ", dir, off);
		put_hex(line, sizeof(line), &pos, p + off, k);
		emit_locked(line);
	}
}

static void log_cmd_locked(const uint8_t *p, size_t len, int redact)
{
	char line[256];
	size_t pos = 0;
	struct cmd_body cb;
	const char *what = kyso_apdu_is_secret(p, len) ? "PIN" : "secret";

	if (len < 4) {
		put_str(line, sizeof(line), &pos, "apdu> ");
		put_hex(line, sizeof(line), &pos, p, len);
		put_str(line, sizeof(line), &pos, " (short command, %zu bytes)",
			len);
		emit_locked(line);
		return;
	}
	put_str(line, sizeof(line), &pos, "apdu> ");
	put_hex(line, sizeof(line), &pos, p, 4);
	parse_body(p + 4, len - 4, &cb);
	if (!cb.ok) {
		put_str(line, sizeof(line), &pos,
			" (malformed body, %zu bytes)", len - 4);
		if (redact) {
			put_str(line, sizeof(line), &pos,
				" [%s data redacted, %zu bytes]", what,
				len - 4);
			emit_locked(line);
		} else if (len - 4 <= APDU_BYTES_PER_LINE) {
			put_str(line, sizeof(line), &pos, " ");
			put_hex(line, sizeof(line), &pos, p + 4, len - 4);
			emit_locked(line);
		} else {
			emit_locked(line);
			emit_chunks_locked(">", p + 4, len - 4);
		}
		return;
	}
	if (cb.lc) {
		put_str(line, sizeof(line), &pos, " Lc=");
		put_hex(line, sizeof(line), &pos, cb.lc, cb.lclen);
	}
	if (cb.le) {
		put_str(line, sizeof(line), &pos, " Le=");
		put_hex(line, sizeof(line), &pos, cb.le, cb.lelen);
	}
	if (cb.ndata == 0) {
		emit_locked(line);
	} else if (redact) {
		put_str(line, sizeof(line), &pos,
			" [%s data redacted, %zu bytes]", what, cb.ndata);
		emit_locked(line);
	} else if (cb.ndata <= APDU_BYTES_PER_LINE) {
		put_str(line, sizeof(line), &pos, " data=");
		put_hex(line, sizeof(line), &pos, cb.data, cb.ndata);
		emit_locked(line);
	} else {
		put_str(line, sizeof(line), &pos, " data: %zu bytes", cb.ndata);
		emit_locked(line);
		emit_chunks_locked(">", cb.data, cb.ndata);
	}
}

static void log_resp_locked(const uint8_t *p, size_t len, int redact)
{
	char line[256];
	size_t pos = 0, n;

	put_str(line, sizeof(line), &pos, "apdu< ");
	if (len < 2) {
		put_hex(line, sizeof(line), &pos, p, len);
		put_str(line, sizeof(line), &pos,
			" (no status word, %zu bytes)", len);
		emit_locked(line);
		return;
	}
	n = len - 2;
	put_str(line, sizeof(line), &pos, "SW=%02X%02X", p[n], p[n + 1]);
	if (n == 0) {
		emit_locked(line);
	} else if (redact) {
		put_str(line, sizeof(line), &pos,
			" [secret data redacted, %zu bytes]", n);
		emit_locked(line);
	} else if (n <= APDU_BYTES_PER_LINE) {
		put_str(line, sizeof(line), &pos, " data=");
		put_hex(line, sizeof(line), &pos, p, n);
		emit_locked(line);
	} else {
		put_str(line, sizeof(line), &pos, " data: %zu bytes", n);
		emit_locked(line);
		emit_chunks_locked("<", p, n);
	}
}

void kyso_log_apdu(int is_cmd, const uint8_t *p, size_t len, int redact)
{
	int saved = errno;

	if (kyso_log_level < KYSO_LOG_APDU)
		return;
	if (!p)
		len = 0;
	pthread_mutex_lock(&log_lock);
	if (is_cmd)
		log_cmd_locked(p, len, redact || kyso_apdu_is_secret(p, len));
	else
		log_resp_locked(p, len, redact);
	pthread_mutex_unlock(&log_lock);
	errno = saved;
}
