/* Unit tests for util/log.c: levels, line format, the log file, thread
 * safety, and above all that APDU traces never show PIN data. Each test logs
 * to its own temporary file through KYSO_LOG. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iso7816/apdu.h"
#include "reader/reader.h"
#include "util/buf.h"
#include "util/log.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char log_path[64];

static void start_log(const char *level)
{
	kyso_log_fini();
	setenv("KYSO_LOG", log_path, 1);
	if (level)
		setenv("KYSO_DEBUG", level, 1);
	else
		unsetenv("KYSO_DEBUG");
	kyso_log_init();
}

static void setup(void)
{
	int fd;

	strcpy(log_path, "/tmp/kyso-test-log-XXXXXX");
	fd = mkstemp(log_path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	start_log("3");
}

static void teardown(void)
{
	kyso_log_fini();
	unlink(log_path);
	unsetenv("KYSO_LOG");
	unsetenv("KYSO_DEBUG");
}

static char *read_log(void)
{
	FILE *f = fopen(log_path, "r");
	char *s;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

/* The log without the "time kyso[pid:tid] " prefixes, which hold digits that
 * could contain a PIN by chance. */
static char *log_bodies(void)
{
	char *s = read_log(), *out = calloc(1, strlen(s) + 1), *line, *save;
	char *body;

	ck_assert_ptr_nonnull(out);
	for (line = strtok_r(s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		body = strstr(line, "] ");
		ck_assert_ptr_nonnull(body);
		strcat(out, body + 2);
		strcat(out, "\n");
	}
	free(s);
	return out;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void assert_has(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) != NULL, "'%s' not in log:\n%s",
		      needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) == NULL, "'%s' in log:\n%s", needle,
		      hay);
}

/* Logs one command APDU given in hex. */
static void log_cmd_hex(const char *hex, int redact)
{
	uint8_t b[600];
	long n = kyso_unhex(hex, b, sizeof(b));

	ck_assert_int_ge(n, 0);
	kyso_log_apdu(1, b, (size_t)n, redact);
}

/* --- redaction ---------------------------------------------------------- */

START_TEST(log_hides_the_pin_of_a_verify_sent_to_a_card)
{
	static const struct kyso_script_step steps[] = {
	    {"0020008106313233343536", "9000"},
	};
	static const uint8_t cmd[] = {0x00, 0x20, 0x00, 0x81, 0x06, '1',
				      '2',  '3',  '4',	'5',  '6'};
	struct kyso_card *c = kyso_script_card(NULL, 0, steps, 1);
	uint8_t *resp = malloc(KYSO_MAX_RAPDU);
	char *all, *bodies;
	size_t n;

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, sizeof(cmd), resp, &n),
			  CKR_OK);
	all = read_log();
	bodies = log_bodies();
	assert_lacks(all, "313233343536");
	assert_lacks(bodies, "123456");
	assert_has(bodies, "00200081");
	assert_has(bodies, "Lc=06");
	assert_has(bodies, "[PIN data redacted, 6 bytes]");
	assert_has(bodies, "SW=9000");
	free(all);
	free(bodies);
	free(resp);
	kyso_card_free(c);
}
END_TEST

START_TEST(log_hides_pin_data_whatever_the_class_byte)
{
	static const uint8_t clas[] = {0x00, 0x01, 0x0c, 0x10, 0x1c, 0x40,
				       0x70, 0x80, 0x8c, 0x9c, 0xe0, 0xff};
	static const uint8_t inss[] = {0x20, 0x21, 0x24, 0x26, 0x28, 0x2c};
	uint8_t cmd[5 + 14];
	char hdr[9], *all, *bodies;
	size_t i, j;

	for (i = 0; i < N(clas); i++) {
		for (j = 0; j < N(inss); j++) {
			cmd[0] = clas[i];
			cmd[1] = inss[j];
			cmd[2] = 0x00;
			cmd[3] = 0x81;
			cmd[4] = 14;
			memcpy(cmd + 5, "12345687654321", 14);
			kyso_log_apdu(1, cmd, sizeof(cmd), 0);
		}
	}
	all = read_log();
	bodies = log_bodies();
	assert_lacks(all, "3132333435");
	assert_lacks(all, "3837363534");
	assert_lacks(bodies, "123456");
	assert_lacks(bodies, "654321");
	for (i = 0; i < N(clas); i++) {
		for (j = 0; j < N(inss); j++) {
			snprintf(hdr, sizeof(hdr), "%02X%02X0081", clas[i],
				 inss[j]);
			assert_has(bodies, hdr);
		}
	}
	ck_assert_uint_eq(count_lines(bodies), N(clas) * N(inss));
	free(all);
	free(bodies);
}
END_TEST

START_TEST(log_hides_old_and_new_pin_of_change_reference_data)
{
	char *all, *bodies;

	/* old 123456, new 654321; PUK 12345678 and new PIN 123456 */
	log_cmd_hex("0024008010 313233343536FFFF 363534333231FFFF", 0);
	log_cmd_hex("002C00801031323334353637383132333435360000", 0);
	all = read_log();
	bodies = log_bodies();
	assert_lacks(all, "313233343536");
	assert_lacks(all, "363534333231");
	assert_lacks(bodies, "123456");
	assert_lacks(bodies, "654321");
	assert_has(bodies, "00240080 Lc=10");
	assert_has(bodies, "002C0080 Lc=10");
	free(all);
	free(bodies);
}
END_TEST

START_TEST(log_hides_the_pin_of_an_extended_length_verify)
{
	char *all;

	log_cmd_hex("00200081 000006 313233343536", 0);
	log_cmd_hex("00200081 000006 313233343536 0000", 0);
	all = read_log();
	assert_lacks(all, "313233343536");
	assert_has(all, "00200081 Lc=000006 [PIN data redacted, 6 bytes]");
	assert_has(all, "Le=0000");
	free(all);
}
END_TEST

START_TEST(log_hides_the_pin_of_a_malformed_verify)
{
	char *all;

	/* Lc says 8 but 6 bytes follow; Lc 00 with short data; no Lc at all */
	log_cmd_hex("0020008108313233343536", 0);
	log_cmd_hex("0020008100313233343536", 0);
	log_cmd_hex("00200081313233343536", 0);
	all = read_log();
	assert_lacks(all, "3132333435");
	assert_lacks(all, "3233343536");
	assert_has(all, "[PIN data redacted, 7 bytes]");
	assert_has(all, "[PIN data redacted, 6 bytes]");
	free(all);
}
END_TEST

START_TEST(log_shows_a_verify_without_data_plainly)
{
	char *bodies;

	log_cmd_hex("00200081", 0);
	bodies = log_bodies();
	ck_assert_str_eq(bodies, "apdu> 00200081\n");
	free(bodies);
}
END_TEST

START_TEST(log_hides_each_block_of_a_chained_verify)
{
	static const struct kyso_script_step steps[] = {
	    {"1020008104 31323334", "9000"},
	    {"1020008104 35363738", "9000"},
	    {"0020008102 3930", "9000"},
	};
	static const uint8_t pin[] = "1234567890";
	struct kyso_card *c = kyso_script_card(NULL, 0, steps, N(steps));
	struct kyso_apdu a = {.ins = 0x20,
			      .p2 = 0x81,
			      .data = pin,
			      .lc = 10,
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	char *all, *bodies;
	uint16_t sw;

	ck_assert_ptr_nonnull(c);
	c->max_send = 4;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_int_eq(kyso_script_mismatch(c), 0);
	all = read_log();
	bodies = log_bodies();
	assert_lacks(all, "31323334");
	assert_lacks(all, "35363738");
	assert_lacks(all, "3930");
	assert_lacks(bodies, "1234");
	assert_has(bodies, "10200081 Lc=04 [PIN data redacted, 4 bytes]");
	assert_has(bodies, "00200081 Lc=02 [PIN data redacted, 2 bytes]");
	free(all);
	free(bodies);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(log_hides_data_of_apdus_flagged_secret)
{
	static const struct kyso_script_step steps[] = {
	    {"002A8086 08 CAFEBABEDEADBEEF 00", "6102"},
	    {"00C0000002", "0102 9000"},
	};
	static const uint8_t key[] = {0xca, 0xfe, 0xba, 0xbe,
				      0xde, 0xad, 0xbe, 0xef};
	struct kyso_card *c = kyso_script_card(NULL, 0, steps, N(steps));
	struct kyso_apdu a = {.ins = 0x2a,
			      .p1 = 0x80,
			      .p2 = 0x86,
			      .data = key,
			      .lc = sizeof(key),
			      .le = 256,
			      .flags = KYSO_APDU_SECRET};
	struct kyso_buf b = KYSO_BUF_INIT;
	char *all;
	uint16_t sw;

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	all = read_log();
	assert_lacks(all, "CAFEBABE");
	assert_lacks(all, "DEADBEEF");
	assert_has(all, "002A8086 Lc=08 Le=00 [secret data redacted, 8 bytes]");
	/* the GET RESPONSE that follows has nothing to hide */
	assert_has(all, "apdu> 00C00000 Le=02");
	free(all);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(log_never_prints_a_pin_the_script_did_not_expect)
{
	static const struct kyso_script_step steps[] = {
	    {"0020008106 313233343536", "9000"},
	};
	static const uint8_t cmd[] = {0x00, 0x20, 0x00, 0x81, 0x06, '6',
				      '5',  '4',  '3',	'2',  '1'};
	struct kyso_card *c = kyso_script_card(NULL, 0, steps, 1);
	uint8_t *resp = malloc(KYSO_MAX_RAPDU);
	char *all;
	size_t n;

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, sizeof(cmd), resp, &n),
			  CKR_DEVICE_ERROR);
	ck_assert_int_eq(kyso_script_mismatch(c), 1);
	all = read_log();
	assert_lacks(all, "363534333231");
	assert_has(all, "unexpected command");
	free(all);
	free(resp);
	kyso_card_free(c);
}
END_TEST

START_TEST(log_hides_response_data_when_asked)
{
	static const uint8_t r[] = {0x11, 0x22, 0x33, 0x44, 0x90, 0x00};
	char *all;

	kyso_log_apdu(0, r, sizeof(r), 1);
	all = read_log();
	assert_lacks(all, "11223344");
	assert_has(all, "apdu< SW=9000 [secret data redacted, 4 bytes]");
	free(all);
}
END_TEST

START_TEST(apdu_is_secret_knows_the_pin_instructions)
{
	uint8_t cmd[5] = {0x00, 0x00, 0x00, 0x80, 0x00};
	unsigned ins;

	for (ins = 0; ins < 0x100; ins++) {
		int want = ins == 0x20 || ins == 0x21 || ins == 0x24 ||
			   ins == 0x26 || ins == 0x28 || ins == 0x2c;

		cmd[1] = (uint8_t)ins;
		ck_assert_int_eq(kyso_apdu_is_secret(cmd, sizeof(cmd)), want);
		cmd[0] = 0x8c;
		ck_assert_int_eq(kyso_apdu_is_secret(cmd, sizeof(cmd)), want);
		cmd[0] = 0x00;
	}
	ck_assert_int_eq(kyso_apdu_is_secret(cmd, 1), 0);
	ck_assert_int_eq(kyso_apdu_is_secret(NULL, 5), 0);
}
END_TEST

/* --- plain traces ------------------------------------------------------- */

START_TEST(log_shows_commands_and_responses_in_hex)
{
	static const uint8_t r[] = {0x61, 0x11, 0x4f, 0x90, 0x00};
	char *bodies;

	log_cmd_hex("00A4040009A0000003080000100000", 0);
	log_cmd_hex("00B00000", 0);
	log_cmd_hex("00B0000000", 0);
	log_cmd_hex("00B00000000100", 0);
	kyso_log_apdu(0, r, sizeof(r), 0);
	kyso_log_apdu(0, r + 3, 2, 0);
	kyso_log_apdu(0, r, 1, 0);
	bodies = log_bodies();
	ck_assert_str_eq(bodies,
			 "apdu> 00A40400 Lc=09 Le=00 data=A00000030800001000\n"
			 "apdu> 00B00000\n"
			 "apdu> 00B00000 Le=00\n"
			 "apdu> 00B00000 Le=000100\n"
			 "apdu< SW=9000 data=61114F\n"
			 "apdu< SW=9000\n"
			 "apdu< 61 (no status word, 1 bytes)\n");
	free(bodies);
}
END_TEST

START_TEST(log_shows_truncated_and_malformed_commands)
{
	char *bodies;

	log_cmd_hex("00A4", 0);
	log_cmd_hex("00A4040005AABB", 0);
	kyso_log_apdu(1, NULL, 10, 0);
	bodies = log_bodies();
	assert_has(bodies, "apdu> 00A4 (short command, 2 bytes)");
	assert_has(bodies, "apdu> 00A40400 (malformed body, 3 bytes) 05AABB");
	assert_has(bodies, "apdu>  (short command, 0 bytes)");
	free(bodies);
}
END_TEST

START_TEST(log_splits_long_data_into_bounded_lines)
{
	uint8_t cmd[5 + 200], resp[1000 + 2];
	char *bodies, *line, *save, *joined, *want;
	size_t i, lines = 0;

	cmd[0] = 0x00;
	cmd[1] = 0xd6;
	cmd[2] = 0x00;
	cmd[3] = 0x00;
	cmd[4] = 200;
	for (i = 0; i < 200; i++)
		cmd[5 + i] = (uint8_t)i;
	for (i = 0; i < 1000; i++)
		resp[i] = (uint8_t)(i * 7);
	resp[1000] = 0x90;
	resp[1001] = 0x00;
	kyso_log_apdu(1, cmd, sizeof(cmd), 0);
	kyso_log_apdu(0, resp, sizeof(resp), 0);

	bodies = log_bodies();
	joined = calloc(1, 2 * sizeof(resp) + 1);
	want = malloc(2 * sizeof(resp) + 1);
	for (line = strtok_r(bodies, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon = strstr(line, ": ");

		ck_assert_uint_le(strlen(line), 100);
		lines++;
		if (colon && strncmp(line, "apdu<   ", 8) == 0)
			strcat(joined, colon + 2);
	}
	/* a header line and ceil(n/32) data lines for each */
	ck_assert_uint_eq(lines, 1 + 7 + 1 + 32);
	kyso_hex(resp, 1000, want);
	ck_assert_str_eq(joined, want);
	free(bodies);
	free(joined);
	free(want);
}
END_TEST

/* --- levels, format, file ---------------------------------------------- */

START_TEST(log_writes_only_up_to_its_level)
{
	static const uint8_t cmd[] = {0x00, 0xa4, 0x04, 0x00};
	char *bodies;

	start_log("1");
	ck_assert_int_eq(kyso_log_level, 1);
	kyso_log(KYSO_LOG_ERR, "error %d", 1);
	kyso_log(KYSO_LOG_CALL, "call %d", 2);
	kyso_dbg("debug %d", 3);
	kyso_log_apdu(1, cmd, sizeof(cmd), 0);
	start_log("2");
	kyso_dbg("debug %d", 4);
	kyso_log_apdu(1, cmd, sizeof(cmd), 0);
	kyso_log(0, "never");
	kyso_log(-1, "never");
	bodies = log_bodies();
	ck_assert_str_eq(bodies, "error 1\ndebug 4\n");
	free(bodies);
}
END_TEST

START_TEST(log_reads_only_levels_zero_to_three)
{
	start_log("0");
	ck_assert_int_eq(kyso_log_level, 0);
	start_log("3");
	ck_assert_int_eq(kyso_log_level, 3);
	start_log("9");
	ck_assert_int_eq(kyso_log_level, 3);
	start_log("-1");
	ck_assert_int_eq(kyso_log_level, 0);
	start_log("apdu");
	ck_assert_int_eq(kyso_log_level, 0);
	start_log("2x");
	ck_assert_int_eq(kyso_log_level, 0);
	start_log("");
	ck_assert_int_eq(kyso_log_level, 0);
	start_log(NULL);
	ck_assert_int_eq(kyso_log_level, 0);
	start_log("99999999999999999999999");
	ck_assert_int_eq(kyso_log_level, 0);
}
END_TEST

START_TEST(log_lines_carry_time_and_thread_id)
{
	char *all;
	regex_t re;

	kyso_log(KYSO_LOG_ERR, "hello %s", "world");
	all = read_log();
	ck_assert_int_eq(
	    regcomp(&re,
		    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
		    "\\.[0-9]{3}Z kyso\\[[0-9]+:[0-9]+\\] hello world\n$",
		    REG_EXTENDED),
	    0);
	ck_assert_msg(regexec(&re, all, 0, NULL, 0) == 0, "line: %s", all);
	regfree(&re);
	free(all);
}
END_TEST

START_TEST(log_makes_one_line_of_each_call)
{
	char *bodies;

	kyso_log(KYSO_LOG_ERR, "two\nlines\r\tand\x1b[31mescape\n");
	kyso_log(KYSO_LOG_ERR, "label %s", "a\nb");
	bodies = log_bodies();
	ck_assert_str_eq(bodies, "two lines  and?[31mescape\nlabel a b\n");
	free(bodies);
}
END_TEST

START_TEST(log_cuts_long_messages_to_a_bounded_line)
{
	char *big = malloc(10000), *all;

	memset(big, 'x', 9999);
	big[9999] = '\0';
	kyso_log(KYSO_LOG_ERR, "%s", big);
	all = read_log();
	ck_assert_uint_eq(count_lines(all), 1);
	ck_assert_uint_le(strlen(all), 2048);
	assert_has(all, "xxx...\n");
	free(all);
	free(big);
}
END_TEST

START_TEST(log_keeps_errno)
{
	errno = EBADF;
	kyso_log(KYSO_LOG_ERR, "x");
	ck_assert_int_eq(errno, EBADF);
	errno = ENOENT;
	log_cmd_hex("00A40400", 0);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(log_init_twice_opens_the_file_once)
{
	char *all;

	kyso_log_init();
	kyso_log_init();
	kyso_log(KYSO_LOG_ERR, "once");
	all = read_log();
	ck_assert_uint_eq(count_lines(all), 1);
	free(all);
}
END_TEST

START_TEST(log_appends_to_an_existing_file)
{
	FILE *f;
	char *all;

	kyso_log_fini();
	f = fopen(log_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("earlier\n", f);
	fclose(f);
	start_log("3");
	kyso_log(KYSO_LOG_ERR, "later");
	all = read_log();
	ck_assert_int_eq(strncmp(all, "earlier\n", 8), 0);
	assert_has(all, "later\n");
	free(all);
}
END_TEST

START_TEST(log_file_is_closed_on_exec)
{
	char link[PATH_MAX], path[64];
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int found = 0;
	ssize_t n;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, log_path) != 0)
			continue;
		found = 1;
		ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		ck_assert(fcntl(fd, F_GETFL) & O_APPEND);
	}
	closedir(d);
	ck_assert(found);
}
END_TEST

START_TEST(log_fini_stops_writing_and_closes_the_file)
{
	char *all;

	kyso_log(KYSO_LOG_ERR, "before");
	kyso_log_fini();
	ck_assert_int_eq(kyso_log_level, 0);
	kyso_log(KYSO_LOG_ERR, "after");
	kyso_log_fini();
	all = read_log();
	assert_has(all, "before");
	assert_lacks(all, "after");
	free(all);
}
END_TEST

START_TEST(log_falls_back_to_stderr_when_the_file_cannot_open)
{
	kyso_log_fini();
	setenv("KYSO_LOG", "/nonexistent-dir/kyso.log", 1);
	kyso_log_init();
	ck_assert_int_eq(kyso_log_level, 3);
	kyso_log_fini();
}
END_TEST

enum { THREADS = 8, PER_THREAD = 200 };

static void *log_many(void *arg)
{
	static const uint8_t cmd[] = {0x00, 0xb0, 0x00, 0x00, 0x00};
	long id = (long)(intptr_t)arg;
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		if (i % 2)
			kyso_log(KYSO_LOG_ERR, "thread %ld line %d end", id, i);
		else
			kyso_log_apdu(1, cmd, sizeof(cmd), 0);
	}
	return NULL;
}

START_TEST(log_lines_from_threads_never_interleave)
{
	pthread_t th[THREADS];
	char *all, *line, *save;
	regex_t re;
	size_t lines = 0;
	long i;

	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, log_many, (void *)(intptr_t)i),
		    0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	all = read_log();
	ck_assert_int_eq(
	    regcomp(&re,
		    "^[0-9TZ:.-]+ kyso\\[[0-9]+:[0-9]+\\] "
		    "(thread [0-9] line [0-9]+ end|apdu> 00B00000 Le=00)$",
		    REG_EXTENDED),
	    0);
	for (line = strtok_r(all, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "line: %s",
			      line);
		lines++;
	}
	ck_assert_uint_eq(lines, THREADS * PER_THREAD);
	regfree(&re);
	free(all);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = tcase_create("redaction");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, log_hides_the_pin_of_a_verify_sent_to_a_card);
	tcase_add_test(tc, log_hides_pin_data_whatever_the_class_byte);
	tcase_add_test(tc, log_hides_old_and_new_pin_of_change_reference_data);
	tcase_add_test(tc, log_hides_the_pin_of_an_extended_length_verify);
	tcase_add_test(tc, log_hides_the_pin_of_a_malformed_verify);
	tcase_add_test(tc, log_shows_a_verify_without_data_plainly);
	tcase_add_test(tc, log_hides_each_block_of_a_chained_verify);
	tcase_add_test(tc, log_hides_data_of_apdus_flagged_secret);
	tcase_add_test(tc, log_never_prints_a_pin_the_script_did_not_expect);
	tcase_add_test(tc, log_hides_response_data_when_asked);
	tcase_add_test(tc, apdu_is_secret_knows_the_pin_instructions);
	suite_add_tcase(s, tc);

	tc = tcase_create("trace");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, log_shows_commands_and_responses_in_hex);
	tcase_add_test(tc, log_shows_truncated_and_malformed_commands);
	tcase_add_test(tc, log_splits_long_data_into_bounded_lines);
	suite_add_tcase(s, tc);

	tc = tcase_create("output");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, log_writes_only_up_to_its_level);
	tcase_add_test(tc, log_reads_only_levels_zero_to_three);
	tcase_add_test(tc, log_lines_carry_time_and_thread_id);
	tcase_add_test(tc, log_makes_one_line_of_each_call);
	tcase_add_test(tc, log_cuts_long_messages_to_a_bounded_line);
	tcase_add_test(tc, log_keeps_errno);
	tcase_add_test(tc, log_init_twice_opens_the_file_once);
	tcase_add_test(tc, log_appends_to_an_existing_file);
	tcase_add_test(tc, log_file_is_closed_on_exec);
	tcase_add_test(tc, log_fini_stops_writing_and_closes_the_file);
	tcase_add_test(tc, log_falls_back_to_stderr_when_the_file_cannot_open);
	tcase_add_test(tc, log_lines_from_threads_never_interleave);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
