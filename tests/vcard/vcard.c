/* kyso-vcard core: connects to vpcd as its card, frames APDUs, keeps the
 * state file, the APDU log and the counters, and injects latency and
 * faults on command from a control FIFO. What the card answers is the
 * profile's business (profile-*.c). One thread, one poll loop. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll, getrandom */
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vcard.h"

/* vpcd's frame length is 16 bits; a response carries up to 65536 data
 * bytes and SW1 SW2, but must still fit that length field. */
#define FRAME_MAX  0xFFFF
#define RESP_CAP   (65536 + 2)
#define MAX_FAULTS 16
#define CTL_LINE   256

static const struct vcard_profile *const profiles[] = {
    &vcard_profile_blank,
    &vcard_profile_piv,
	&vcard_profile_epass2003,
	&vcard_profile_epass2003_aes,
	&vcard_profile_epass2003_fips,
	&vcard_profile_epass2003_espk,
};

/* --- key=value state ---------------------------------------------------- */

struct kv_pair {
	char *name;
	char *value;
};

struct vcard_kv {
	struct kv_pair *v;
	size_t n, cap;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "kyso-vcard: out of memory\n");
		exit(1);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

static struct kv_pair *kv_find(const struct vcard_kv *kv, const char *name)
{
	size_t i;

	for (i = 0; i < kv->n; i++)
		if (!strcmp(kv->v[i].name, name))
			return &kv->v[i];
	return NULL;
}

const char *vcard_kv_get(const struct vcard_kv *kv, const char *name)
{
	struct kv_pair *e = kv_find(kv, name);

	return e ? e->value : NULL;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vcard_kv_get_hex(const struct vcard_kv *kv, const char *name, uint8_t **out,
		     size_t *len)
{
	const char *s = vcard_kv_get(kv, name);
	size_t i, n;
	uint8_t *p;

	if (!s)
		return -1;
	n = strlen(s);
	if (n % 2)
		return -1;
	for (i = 0; i < n; i++)
		if (hexval(s[i]) < 0)
			return -1;
	/* Never NULL, so an empty value is still a buffer to free. */
	p = xmalloc(n / 2);
	for (i = 0; i < n / 2; i++)
		p[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
	*out = p;
	*len = n / 2;
	return 0;
}

long vcard_kv_get_int(const struct vcard_kv *kv, const char *name, long def)
{
	const char *s = vcard_kv_get(kv, name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	/* Not base 0: a decimal "010" must not turn octal. */
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		v = strtol(s + 2, &end, 16);
	else
		v = strtol(s, &end, 10);
	return (errno || *end) ? def : v;
}

void vcard_kv_set(struct vcard_kv *kv, const char *name, const char *value)
{
	struct kv_pair *e;

	/* The file format cannot carry these; it is a profile bug. */
	if (!*name || strpbrk(name, "=\n#") || name[0] == ' ' ||
	    strchr(value, '\n')) {
		fprintf(stderr, "kyso-vcard: bad state entry '%s'\n", name);
		abort();
	}
	e = kv_find(kv, name);
	if (e) {
		free(e->value);
		e->value = xstrdup(value);
		return;
	}
	if (kv->n == kv->cap) {
		kv->cap = kv->cap ? 2 * kv->cap : 32;
		kv->v = realloc(kv->v, kv->cap * sizeof(*kv->v));
		if (!kv->v) {
			fprintf(stderr, "kyso-vcard: out of memory\n");
			exit(1);
		}
	}
	kv->v[kv->n].name = xstrdup(name);
	kv->v[kv->n].value = xstrdup(value);
	kv->n++;
}

void vcard_kv_set_hex(struct vcard_kv *kv, const char *name, const uint8_t *p,
		      size_t len)
{
	static const char digits[] = "0123456789ABCDEF";
	char *s = xmalloc(2 * len + 1);
	size_t i;

	for (i = 0; i < len; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 15];
	}
	s[2 * len] = 0;
	vcard_kv_set(kv, name, s);
	free(s);
}

void vcard_kv_set_int(struct vcard_kv *kv, const char *name, long v)
{
	char s[32];

	snprintf(s, sizeof(s), "%ld", v);
	vcard_kv_set(kv, name, s);
}

void vcard_kv_del(struct vcard_kv *kv, const char *name)
{
	struct kv_pair *e = kv_find(kv, name);

	if (!e)
		return;
	free(e->name);
	free(e->value);
	*e = kv->v[--kv->n];
}

static void kv_free(struct vcard_kv *kv)
{
	size_t i;

	for (i = 0; i < kv->n; i++) {
		free(kv->v[i].name);
		free(kv->v[i].value);
	}
	free(kv->v);
	memset(kv, 0, sizeof(*kv));
}

/* Missing file: an empty store, the profile's cue for factory state. */
static int kv_load(struct vcard_kv *kv, const char *path)
{
	char *line = NULL, *eq;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "kyso-vcard: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (!n || line[0] == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq || eq == line) {
			fprintf(stderr, "kyso-vcard: %s: bad line '%s'\n", path,
				line);
			continue;
		}
		*eq = 0;
		vcard_kv_set(kv, line, eq + 1);
	}
	free(line);
	fclose(f);
	return 0;
}

/* Readers (tests, a later run) must only ever see a whole file: write a
 * sibling and rename it over. */
static int write_atomic(const char *path, const char *text, size_t len)
{
	size_t plen = strlen(path);
	char *tmp = xmalloc(plen + 8);
	int fd, ret = -1;

	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto out;
	while (len) {
		ssize_t w = write(fd, text, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			close(fd);
			goto out;
		}
		text += w;
		len -= (size_t)w;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0) {
		fprintf(stderr, "kyso-vcard: cannot write %s: %s\n", path,
			strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return ret;
}

static int kv_save(const struct vcard_kv *kv, const char *path)
{
	size_t i, len = 0, off = 0;
	char *text;
	int ret;

	for (i = 0; i < kv->n; i++)
		len += strlen(kv->v[i].name) + strlen(kv->v[i].value) + 2;
	text = xmalloc(len + 1);
	for (i = 0; i < kv->n; i++)
		off += (size_t)sprintf(text + off, "%s=%s\n", kv->v[i].name,
				       kv->v[i].value);
	ret = write_atomic(path, text, off);
	free(text);
	return ret;
}

/* --- the core ------------------------------------------------------------ */

enum fault_kind { FAULT_DROP, FAULT_TRUNCATE, FAULT_GARBAGE, FAULT_SW };

static const char *const fault_names[] = {"drop", "truncate", "garbage", "sw"};

struct fault {
	enum fault_kind kind;
	int ins; /* -1: the very next APDU */
	uint16_t sw;
};

struct core {
	struct vcard vc;
	struct vcard_kv kv;
	const char *state_path, *stats_path, *log_path, *ctl_path;
	FILE *log;
	unsigned short port;
	unsigned apdu_delay_ms, connect_timeout_s;

	int sock;		  /* -1 while out of the reader */
	int want;		  /* be in the reader: keep (re)connecting */
	struct timespec deadline; /* give up connecting */

	int ctl;
	char ctlbuf[CTL_LINE];
	size_t ctllen;
	int ctl_overlong; /* skipping the rest of a too-long line */

	uint8_t *rbuf; /* 2-byte length + frame, as it trickles in */
	size_t rlen;
	uint8_t *resp; /* 2-byte length + response */

	struct fault faults[MAX_FAULTS];
	size_t nfaults;
	int quit;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ISO 7816-3 cases 1..4, short and extended. 0 or -1. */
int vcard_parse_apdu(const uint8_t *c, size_t len, struct vcard_apdu *a)
{
	memset(a, 0, sizeof(*a));
	if (len < 4)
		return -1;
	a->cla = c[0];
	a->ins = c[1];
	a->p1 = c[2];
	a->p2 = c[3];
	if (len == 4)
		return 0;
	if (len == 5) {
		a->has_le = 1;
		a->le = c[4] ? c[4] : 256;
		return 0;
	}
	if (c[4] != 0) {
		a->lc = c[4];
		a->data = c + 5;
		if (len == 5 + a->lc)
			return 0;
		if (len == 6 + a->lc) {
			a->has_le = 1;
			a->le = c[len - 1] ? c[len - 1] : 256;
			return 0;
		}
		return -1;
	}
	if (len < 7)
		return -1;
	if (len == 7) {
		a->has_le = 1;
		a->le = (size_t)c[5] << 8 | c[6];
		if (!a->le)
			a->le = 65536;
		return 0;
	}
	a->lc = (size_t)c[5] << 8 | c[6];
	if (a->lc == 0)
		return -1;
	a->data = c + 7;
	if (len == 7 + a->lc)
		return 0;
	if (len == 9 + a->lc) {
		a->has_le = 1;
		a->le = (size_t)c[len - 2] << 8 | c[len - 1];
		if (!a->le)
			a->le = 65536;
		return 0;
	}
	return -1;
}

size_t vcard_finish(uint8_t *resp, size_t cap, const uint8_t *d, size_t n,
		    uint16_t sw)
{
	if (n + 2 > cap) {
		n = 0;
		sw = 0x6F00; /* no precise diagnosis */
	}
	if (n)
		memcpy(resp, d, n);
	resp[n] = (uint8_t)(sw >> 8);
	resp[n + 1] = (uint8_t)sw;
	return n + 2;
}

void vcard_put(struct vcard_wbuf *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	if (n)
		memcpy(w->p + w->len, p, n);
	w->len += n;
}

void vcard_put_u8(struct vcard_wbuf *w, uint8_t v)
{
	vcard_put(w, &v, 1);
}

void vcard_privop(struct vcard *vc)
{
	if (vc->privop_delay_ms)
		sleep_ms(vc->privop_delay_ms);
	vc->privops++;
}

static void log_line(struct core *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void log_line(struct core *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->log)
		return;
	va_start(ap, fmt);
	vfprintf(c->log, fmt, ap);
	va_end(ap);
	fflush(c->log);
}

static void log_hex(struct core *c, char dir, const uint8_t *p, size_t len)
{
	size_t i;

	if (!c->log)
		return;
	fprintf(c->log, "%c ", dir);
	for (i = 0; i < len; i++)
		fprintf(c->log, "%02X", p[i]);
	fputc('\n', c->log);
	fflush(c->log);
}

static void write_stats(struct core *c)
{
	char text[256];
	int n;

	if (!c->stats_path)
		return;
	n = snprintf(text, sizeof(text),
		     "apdus=%lu\nbytes_in=%lu\nbytes_out=%lu\nprivops=%lu\n"
		     "verify_fail=%lu\n",
		     c->vc.apdus, c->vc.bytes_in, c->vc.bytes_out,
		     c->vc.privops, c->vc.verify_fail);
	write_atomic(c->stats_path, text, (size_t)n);
}

static void save_state(struct core *c)
{
	if (c->vc.profile->save)
		c->vc.profile->save(&c->vc, &c->kv);
	c->vc.dirty = 0;
	if (c->state_path)
		kv_save(&c->kv, c->state_path);
}

static void card_reset(struct core *c)
{
	if (c->vc.profile->reset)
		c->vc.profile->reset(&c->vc);
}

static void set_deadline(struct core *c)
{
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += c->connect_timeout_s;
}

static int past_deadline(const struct core *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > c->deadline.tv_sec ||
	       (now.tv_sec == c->deadline.tv_sec &&
		now.tv_nsec >= c->deadline.tv_nsec);
}

/* Pulling the card: the reader sees the slot empty and the card loses its
 * volatile state, as it would without power. */
static void disconnect(struct core *c, const char *why, int reconnect)
{
	if (c->sock >= 0) {
		close(c->sock);
		c->sock = -1;
		log_line(c, "* out: %s\n", why);
		card_reset(c);
	}
	c->rlen = 0;
	c->want = reconnect;
	if (reconnect)
		set_deadline(c);
}

/* 0 connected, 1 try later, -1 give up. */
static int try_connect(struct core *c)
{
	struct sockaddr_in sa = {
	    .sin_family = AF_INET,
	    .sin_port = htons(c->port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("kyso-vcard: socket");
		return -1;
	}
	/* vpcd may not be listening yet (pcscd still starting): not an
	 * error until the deadline. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		if (!past_deadline(c))
			return 1;
		fprintf(stderr,
			"kyso-vcard: no vpcd on 127.0.0.1:%u after %u s: %s\n",
			c->port, c->connect_timeout_s, strerror(err));
		return -1;
	}
	/* Our reply goes out in one write, so Nagle has nothing to merge;
	 * without NODELAY a large reply's tail could wait for an ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->sock = fd;
	c->rlen = 0;
	log_line(c, "* in\n");
	card_reset(c);
	return 0;
}

/* One write per frame: vpcd sends without TCP_NODELAY, so the length and
 * the body of a split reply would each wait on a delayed ACK. */
static int send_frame(struct core *c, uint8_t *frame, size_t len)
{
	size_t off = 0;

	frame[0] = (uint8_t)(len >> 8);
	frame[1] = (uint8_t)len;
	len += 2;
	while (off < len) {
		ssize_t w = send(c->sock, frame + off, len - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = {.fd = c->sock, .events = POLLOUT};

			if (poll(&p, 1, 5000) > 0)
				continue;
			errno = ETIMEDOUT;
		}
		if (w < 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

static struct fault *take_fault(struct core *c, uint8_t ins, struct fault *f)
{
	size_t i;

	for (i = 0; i < c->nfaults; i++) {
		if (c->faults[i].ins >= 0 && c->faults[i].ins != ins)
			continue;
		*f = c->faults[i];
		memmove(&c->faults[i], &c->faults[i + 1],
			(c->nfaults - i - 1) * sizeof(*f));
		c->nfaults--;
		return f;
	}
	return NULL;
}

/* Whether a command APDU carries data (Lc present and non-zero): VERIFY
 * without data only asks for the retry counter and consumes no try. */
static int apdu_has_data(const uint8_t *p, size_t len)
{
	if (len <= 5)
		return 0;
	if (p[4] != 0)
		return 1;
	/* Extended: 00 Lc1 Lc2, or 00 Le1 Le2 alone. */
	return len > 7 && (p[5] || p[6]);
}

static void handle_apdu(struct core *c, const uint8_t *cmd, size_t len)
{
	uint8_t *resp = c->resp + 2;
	struct fault fbuf, *f;
	size_t n;
	uint16_t sw;

	c->vc.apdus++;
	c->vc.bytes_in += len;
	log_hex(c, '>', cmd, len);
	f = take_fault(c, cmd[1], &fbuf);

	if (f && f->kind == FAULT_DROP) {
		/* The card is pulled before it acts on the command. */
		disconnect(c, "fault drop", 0);
		write_stats(c);
		return;
	}
	if (c->apdu_delay_ms)
		sleep_ms(c->apdu_delay_ms);

	n = c->vc.profile->apdu(&c->vc, cmd, len, resp, RESP_CAP);
	if (n < 2 || n > RESP_CAP || n > FRAME_MAX) {
		fprintf(stderr,
			"kyso-vcard: profile %s answered %zu bytes (vpcd "
			"frames at most 65535)\n",
			c->vc.profile->name, n);
		resp[0] = 0x6F;
		resp[1] = 0x00;
		n = 2;
	}
	if (f) {
		log_line(c, "* fault %s\n", fault_names[f->kind]);
		switch (f->kind) {
		case FAULT_TRUNCATE:
			n = 1;
			break;
		case FAULT_GARBAGE:
			if (getrandom(resp, n, 0) != (ssize_t)n)
				memset(resp, 0xA5, n);
			break;
		case FAULT_SW:
			resp[0] = (uint8_t)(f->sw >> 8);
			resp[1] = (uint8_t)f->sw;
			n = 2;
			break;
		case FAULT_DROP:
			break;
		}
	}

	/* Counted on what the host sees, injected faults included: the
	 * invariant under test is what the module does after a failure. */
	if (cmd[1] == 0x20 && n >= 2 && apdu_has_data(cmd, len)) {
		sw = (uint16_t)(resp[n - 2] << 8 | resp[n - 1]);
		if ((sw & 0xFFF0) == 0x63C0 || sw == 0x6983)
			c->vc.verify_fail++;
	}

	log_hex(c, '<', resp, n);
	/* State and counters are on disk before the host sees the answer, so
	 * a test that reads them right after its call sees this APDU. */
	if (c->vc.dirty)
		save_state(c);
	c->vc.bytes_out += n;
	write_stats(c);
	if (send_frame(c, c->resp, n) < 0)
		disconnect(c, strerror(errno), 1);
}

static void handle_frame(struct core *c, const uint8_t *p, size_t len)
{
	const struct vcard_profile *pr = c->vc.profile;

	if (len >= 4) {
		handle_apdu(c, p, len);
		return;
	}
	if (len > 1) {
		/* No header to hand a profile; still answer, or the host
		 * waits for us for ever. */
		static const uint8_t wrong_length[] = {0x67, 0x00};

		c->vc.apdus++;
		c->vc.bytes_in += len;
		log_hex(c, '>', p, len);
		log_hex(c, '<', wrong_length, 2);
		memcpy(c->resp + 2, wrong_length, 2);
		if (send_frame(c, c->resp, 2) < 0)
			disconnect(c, strerror(errno), 1);
		else
			c->vc.bytes_out += 2;
		write_stats(c);
		return;
	}
	if (len == 0)
		return;
	switch (p[0]) {
	case 0x00:
		log_line(c, "* power off\n");
		card_reset(c);
		break;
	case 0x01:
		log_line(c, "* power on\n");
		card_reset(c);
		break;
	case 0x02:
		log_line(c, "* reset\n");
		card_reset(c);
		break;
	case 0x04:
		/* Polled by vpcd for presence: not logged. */
		memcpy(c->resp + 2, pr->atr, pr->atrlen);
		if (send_frame(c, c->resp, pr->atrlen) < 0)
			disconnect(c, strerror(errno), 1);
		break;
	default:
		log_line(c, "* unknown control %02X\n", p[0]);
		break;
	}
}

static void handle_sock(struct core *c)
{
	int one = 1;
	size_t flen;
	ssize_t n;

	/* Quick ACK is cleared by the kernel after use, so re-arm it before
	 * every read or vpcd's two-part frames stall on delayed ACKs. */
	setsockopt(c->sock, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	n = recv(c->sock, c->rbuf + c->rlen, 2 + FRAME_MAX - c->rlen, 0);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* vpcd closed us (ejected, or pcscd is going away): come
		 * back, as a card left in a reader would. */
		disconnect(c, n ? strerror(errno) : "vpcd closed", 1);
		return;
	}
	c->rlen += (size_t)n;
	while (c->sock >= 0 && c->rlen >= 2) {
		flen = (size_t)c->rbuf[0] << 8 | c->rbuf[1];
		if (c->rlen < 2 + flen)
			break;
		handle_frame(c, c->rbuf + 2, flen);
		if (c->sock < 0)
			break;
		c->rlen -= 2 + flen;
		memmove(c->rbuf, c->rbuf + 2 + flen, c->rlen);
	}
}

static int parse_hex16(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!*s)
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 16);
	return (errno || *end || *out > max) ? -1 : 0;
}

static int parse_fault(struct core *c, char *args)
{
	struct fault f = {.ins = -1};
	char *kind, *tok, *save = NULL;
	unsigned long v;

	kind = strtok_r(args, " \t", &save);
	if (!kind)
		return -1;
	if (!strcmp(kind, "drop")) {
		f.kind = FAULT_DROP;
	} else if (!strcmp(kind, "truncate")) {
		f.kind = FAULT_TRUNCATE;
	} else if (!strcmp(kind, "garbage")) {
		f.kind = FAULT_GARBAGE;
	} else if (!strcmp(kind, "sw")) {
		f.kind = FAULT_SW;
		tok = strtok_r(NULL, " \t", &save);
		if (!tok || strlen(tok) != 4 || parse_hex16(tok, 0xFFFF, &v))
			return -1;
		f.sw = (uint16_t)v;
	} else {
		return -1;
	}
	tok = strtok_r(NULL, " \t", &save);
	if (tok) {
		if (strcmp(tok, "ins"))
			return -1;
		tok = strtok_r(NULL, " \t", &save);
		if (!tok || parse_hex16(tok, 0xFF, &v))
			return -1;
		f.ins = (int)v;
		if (strtok_r(NULL, " \t", &save))
			return -1;
	}
	if (c->nfaults == MAX_FAULTS) {
		fprintf(stderr, "kyso-vcard: too many pending faults\n");
		return 0;
	}
	c->faults[c->nfaults++] = f;
	return 0;
}

static int parse_uint(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 3600000)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void handle_ctl_line(struct core *c, char *line)
{
	char *sp, *arg;
	int bad = 0;

	while (*line == ' ' || *line == '\t')
		line++;
	if (!*line || *line == '#')
		return;
	log_line(c, "* ctl %s\n", line);
	sp = strchr(line, ' ');
	arg = sp ? sp + 1 : NULL;
	if (sp)
		*sp = 0;

	if (!strcmp(line, "remove") && !arg) {
		disconnect(c, "removed", 0);
	} else if (!strcmp(line, "insert") && !arg) {
		/* Connecting is left to the loop, so a socket is never
		 * swapped under a pending poll result. */
		if (c->sock < 0 && !c->want) {
			c->want = 1;
			set_deadline(c);
		}
	} else if (!strcmp(line, "fault") && arg) {
		bad = parse_fault(c, arg) < 0;
	} else if (!strcmp(line, "delay") && arg) {
		if (!strncmp(arg, "apdu ", 5))
			bad = parse_uint(arg + 5, &c->apdu_delay_ms) < 0;
		else if (!strncmp(arg, "privop ", 7))
			bad = parse_uint(arg + 7, &c->vc.privop_delay_ms) < 0;
		else
			bad = 1;
	} else if (!strcmp(line, "quit") && !arg) {
		c->quit = 1;
	} else {
		bad = 1;
	}
	if (bad)
		fprintf(stderr, "kyso-vcard: ctl: bad command '%s%s%s'\n", line,
			arg ? " " : "", arg ? arg : "");
}

static void handle_ctl(struct core *c)
{
	char buf[512];
	ssize_t n, i;

	n = read(c->ctl, buf, sizeof(buf));
	for (i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			c->ctlbuf[c->ctllen] = 0;
			if (c->ctl_overlong)
				fprintf(stderr, "kyso-vcard: ctl: line too "
						"long, ignored\n");
			else
				handle_ctl_line(c, c->ctlbuf);
			c->ctllen = 0;
			c->ctl_overlong = 0;
		} else if (c->ctllen + 1 < sizeof(c->ctlbuf)) {
			c->ctlbuf[c->ctllen++] = buf[i];
		} else {
			c->ctl_overlong = 1;
		}
	}
}

static int open_ctl(struct core *c)
{
	struct stat st;

	if (mkfifo(c->ctl_path, 0600) < 0 && errno != EEXIST) {
		fprintf(stderr, "kyso-vcard: mkfifo %s: %s\n", c->ctl_path,
			strerror(errno));
		return -1;
	}
	/* Read-write: we hold a writer ourselves, so the FIFO never reads
	 * as EOF between two card-ctl calls. */
	c->ctl = open(c->ctl_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (c->ctl < 0 || fstat(c->ctl, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		fprintf(stderr, "kyso-vcard: %s: not a usable FIFO\n",
			c->ctl_path);
		return -1;
	}
	return 0;
}

/* A wrong ATR checksum makes some host stacks refuse the card; say so at
 * start rather than leave a test to puzzle over it. */
static void check_atr(const struct vcard_profile *p)
{
	size_t i = 1, k;
	uint8_t y, x = 0;
	int need_tck = 0;

	if (p->atrlen < 2 || p->atrlen > 33) {
		fprintf(stderr, "kyso-vcard: profile %s: ATR of %zu bytes\n",
			p->name, p->atrlen);
		return;
	}
	k = p->atr[1] & 15;
	y = p->atr[1] >> 4;
	while (i < p->atrlen) {
		uint8_t td;

		i += (size_t) !!(y & 1) + !!(y & 2) + !!(y & 4);
		if (!(y & 8))
			break;
		i++;
		if (i >= p->atrlen)
			break;
		td = p->atr[i];
		if ((td & 15) != 0)
			need_tck = 1;
		y = td >> 4;
	}
	if (i + 1 + k + (size_t)need_tck != p->atrlen) {
		fprintf(stderr,
			"kyso-vcard: profile %s: ATR length does not match "
			"its interface bytes\n",
			p->name);
		return;
	}
	if (!need_tck)
		return;
	for (i = 1; i < p->atrlen; i++)
		x ^= p->atr[i];
	if (x)
		fprintf(stderr, "kyso-vcard: profile %s: ATR TCK is wrong\n",
			p->name);
}

static void usage(void)
{
	size_t i;

	fprintf(stderr,
		"usage: kyso-vcard --port N [--profile NAME] [--state FILE]\n"
		"         [--log FILE] [--stats FILE] [--ctl FIFO]\n"
		"         [--apdu-delay-ms N] [--privop-delay-ms N]\n"
		"         [--connect-timeout S]\n"
		"profiles:");
	for (i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		fprintf(stderr, " %s", profiles[i]->name);
	fprintf(stderr, "\n");
}

static int parse_args(struct core *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"profile", required_argument, NULL, 'P'},
	    {"state", required_argument, NULL, 's'},
	    {"log", required_argument, NULL, 'l'},
	    {"stats", required_argument, NULL, 'S'},
	    {"ctl", required_argument, NULL, 'c'},
	    {"apdu-delay-ms", required_argument, NULL, 'a'},
	    {"privop-delay-ms", required_argument, NULL, 'd'},
	    {"connect-timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *profile = "blank";
	unsigned port = 0;
	size_t i;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int bad = 0;

		switch (o) {
		case 'p':
			bad = parse_uint(optarg, &port) < 0 || !port ||
			      port > 65535;
			break;
		case 'P':
			profile = optarg;
			break;
		case 's':
			c->state_path = optarg;
			break;
		case 'l':
			c->log_path = optarg;
			break;
		case 'S':
			c->stats_path = optarg;
			break;
		case 'c':
			c->ctl_path = optarg;
			break;
		case 'a':
			bad = parse_uint(optarg, &c->apdu_delay_ms) < 0;
			break;
		case 'd':
			bad = parse_uint(optarg, &c->vc.privop_delay_ms) < 0;
			break;
		case 't':
			bad = parse_uint(optarg, &c->connect_timeout_s) < 0;
			break;
		default:
			usage();
			return -1;
		}
		if (bad) {
			fprintf(stderr, "kyso-vcard: bad value '%s'\n", optarg);
			return -1;
		}
	}
	if (optind != argc || !port) {
		usage();
		return -1;
	}
	c->port = (unsigned short)port;
	for (i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (!strcmp(profiles[i]->name, profile))
			c->vc.profile = profiles[i];
	if (!c->vc.profile) {
		fprintf(stderr, "kyso-vcard: no profile '%s'\n", profile);
		usage();
		return -1;
	}
	return 0;
}

static int run(struct core *c)
{
	sigset_t block, waitmask;
	struct sigaction sa = {.sa_handler = on_signal};
	int ret = 0;

	/* Signals are only taken inside ppoll(), so an APDU is always
	 * answered and the state saved whole before we leave. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	c->want = 1;
	set_deadline(c);
	while (!c->quit && !got_signal) {
		struct pollfd pfd[2];
		struct timespec retry = {0, 50 * 1000000L};
		nfds_t n = 0;
		int ictl = -1, isock = -1, r;

		if (c->sock < 0 && c->want) {
			r = try_connect(c);
			if (r < 0) {
				ret = 1;
				break;
			}
		}
		if (c->ctl >= 0) {
			ictl = (int)n;
			pfd[n++] =
			    (struct pollfd){.fd = c->ctl, .events = POLLIN};
		}
		if (c->sock >= 0) {
			isock = (int)n;
			pfd[n++] =
			    (struct pollfd){.fd = c->sock, .events = POLLIN};
		}
		r = ppoll(pfd, n, c->sock < 0 && c->want ? &retry : NULL,
			  &waitmask);
		if (r < 0 && errno != EINTR) {
			perror("kyso-vcard: ppoll");
			ret = 1;
			break;
		}
		if (r <= 0)
			continue;
		/* Control first: a command written before the host sent its
		 * APDU must apply to that APDU. */
		if (ictl >= 0 && pfd[ictl].revents)
			handle_ctl(c);
		if (isock >= 0 && pfd[isock].revents &&
		    c->sock == pfd[isock].fd)
			handle_sock(c);
	}
	if (got_signal)
		log_line(c, "* signal %d\n", (int)got_signal);
	return ret;
}

int main(int argc, char **argv)
{
	struct core c = {.sock = -1, .ctl = -1, .connect_timeout_s = 30};
	int ret = 1, loaded = 0;

	if (parse_args(&c, argc, argv) < 0)
		return 2;
	check_atr(c.vc.profile);
	c.rbuf = xmalloc(2 + FRAME_MAX);
	c.resp = xmalloc(2 + RESP_CAP);

	if (c.log_path) {
		c.log = fopen(c.log_path, "ae");
		if (!c.log) {
			fprintf(stderr, "kyso-vcard: %s: %s\n", c.log_path,
				strerror(errno));
			goto out;
		}
	}
	if (c.ctl_path && open_ctl(&c) < 0)
		goto out;
	if (c.state_path && kv_load(&c.kv, c.state_path) < 0)
		goto out;
	loaded = 1;
	if (c.vc.profile->load && c.vc.profile->load(&c.vc, &c.kv) < 0) {
		fprintf(stderr, "kyso-vcard: profile %s: cannot load state\n",
			c.vc.profile->name);
		goto out;
	}
	/* Factory defaults land on disk at once, for tests to read. */
	save_state(&c);
	write_stats(&c);

	ret = run(&c);
	save_state(&c);
	write_stats(&c);
out:
	/* Also after a failed load, which may leave half a state behind. */
	if (loaded && c.vc.profile->free)
		c.vc.profile->free(&c.vc);
	if (c.sock >= 0)
		close(c.sock);
	if (c.ctl >= 0)
		close(c.ctl);
	if (c.log)
		fclose(c.log);
	kv_free(&c.kv);
	free(c.rbuf);
	free(c.resp);
	return ret;
}
