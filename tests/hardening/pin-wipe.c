/* Unit test: PIN buffers are wiped. The PIV driver (src/drivers/piv.c) and
 * the APDU layer under it get a PIN, a new PIN, a PUK and a management key
 * over a scripted card, with APDU tracing on (KYSO_DEBUG=3 to /dev/null).
 * Two places where a forgotten copy would stay are searched for the
 * secrets, in the forms the code handles (as given, and padded with FF as
 * the card gets them):
 *   - every heap block, at the moment it is freed (a free() of our own in
 *     front of glibc's, or the sanitizer allocator's free hook under ASan;
 *     under valgrind, which owns free(), this part cannot run);
 *   - the whole stack of the thread that ran the operation (each operation
 *     runs in a thread whose stack is our own mapping, pre-filled, so
 *     that it can be read after the thread has ended).
 * The PUK held between C_Login(CKU_SO) and C_InitPIN must also be gone
 * from the driver's memory after logout and after unbind. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)0)
#define RUNNING_ON_VALGRIND 0
#endif

#include "crypto/crypto.h"
#include "reader/reader.h"
#include "token/token.h"
#include "util/buf.h"
#include "util/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define WITH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WITH_ASAN 1
#endif
#endif

#define PIN	"739146"
#define NEW_PIN "518274"
#define PUK	"82736451"
/* A key of no pattern that other memory could happen to hold. */
#define MGMT                                                                   \
	"3des:3A7FC2915E08D46BE1294C7A83B65F0D9C2E71A4058BD63F"

static const uint8_t mgmt_key[24] = {
	0x3A, 0x7F, 0xC2, 0x91, 0x5E, 0x08, 0xD4, 0x6B,
	0xE1, 0x29, 0x4C, 0x7A, 0x83, 0xB6, 0x5F, 0x0D,
	0x9C, 0x2E, 0x71, 0xA4, 0x05, 0x8B, 0xD6, 0x3F};

static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);   \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			failures++;                                            \
		}                                                              \
	} while (0)

/* --- what must not stay behind ------------------------------------------- */

/* A secret is searched for by a hash of its bytes, never by the bytes: the
 * search runs inside free(), on the stack being watched, and a comparison
 * with the secret itself would leave the secret there (it did, in about one
 * run of 40 under ASan). The first byte alone is kept to skip quickly. */
struct pattern {
	const char *what;
	uint8_t first;
	uint64_t hash;
	size_t n;
};
static struct pattern pats[12];
static size_t npats;

/* FNV-1a, 64 bits */
#ifdef __GNUC__
__attribute__((no_sanitize_address))
#endif
static uint64_t hash_of(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void add_pat(const char *what, const void *p, size_t n)
{
	pats[npats].first = ((const uint8_t *)p)[0];
	pats[npats].hash = hash_of(p, n);
	pats[npats].n = n;
	pats[npats].what = what;
	npats++;
}

static void add_pin_pats(const char *what, const char *pin)
{
	uint8_t padded[8];
	size_t n = strlen(pin);

	memset(padded, 0xFF, sizeof(padded));
	memcpy(padded, pin, n);
	add_pat(what, padded, sizeof(padded)); /* as the card gets it */
}

static size_t found_at; /* where found_in found it */

static const char *found_in(const uint8_t *p, size_t n)
{
	size_t i, j;

	for (j = 0; j < npats; j++) {
		if (n < pats[j].n)
			continue;
		for (i = 0; i + pats[j].n <= n; i++)
			if (p[i] == pats[j].first &&
			    hash_of(p + i, pats[j].n) == pats[j].hash) {
				found_at = i;
				return pats[j].what;
			}
	}
	return NULL;
}

/* --- every freed block ----------------------------------------------------- */

static volatile int watching;
static const char *heap_leak; /* the first secret found in a freed block */
static size_t heap_blocks;

#ifdef __GNUC__
__attribute__((no_sanitize_address))
#endif
static void inspect(const void *p, size_t n)
{
	const char *w;

	if (!watching || p == NULL || n == 0)
		return;
	VALGRIND_MAKE_MEM_DEFINED(p, n);
	heap_blocks++;
	w = found_in(p, n);
	if (w != NULL && heap_leak == NULL)
		heap_leak = w;
}

#ifdef WITH_ASAN
int __sanitizer_install_malloc_and_free_hooks(
	void (*malloc_hook)(const volatile void *, size_t),
	void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static void free_hook(const volatile void *p)
{
	if (watching && p != NULL)
		inspect((const void *)p, __sanitizer_get_allocated_size(p));
}

/* the sanitizer takes the pair or nothing */
static void malloc_hook(const volatile void *p, size_t n)
{
	(void)p;
	(void)n;
}

static void install_heap_watch(void)
{
	if (!__sanitizer_install_malloc_and_free_hooks(malloc_hook,
						       free_hook)) {
		fprintf(stderr, "cannot install the allocator hooks\n");
		exit(1);
	}
}
#else
#include <malloc.h>
extern void __libc_free(void *);

/* In front of glibc's free for the whole program (libcrypto's frees
 * included, hence visible whatever -fvisibility says): looks at the block,
 * then lets glibc have it. */
__attribute__((visibility("default"))) void free(void *p)
{
	if (watching && p != NULL)
		inspect(p, malloc_usable_size(p));
	__libc_free(p);
}

static void install_heap_watch(void)
{
}
#endif

/* --- the thread stacks ------------------------------------------------------ */

#define STACK_SIZE (512 * 1024)

struct op {
	const char *name;
	void (*fn)(struct op *);
	struct kyso_card *card;
	CK_RV rv, want;
	int leaks; /* a self-check: this one must be caught */
};

/* The operation runs below a pad, so that what the thread library calls
 * on the way out (from higher up) cannot overwrite its frames. */
static void *op_thread(void *arg)
{
	struct op *o = arg;
	volatile uint8_t pad[32768];

	pad[0] = 0;
	o->fn(o);
	pad[sizeof(pad) - 1] = pad[0];
	return NULL;
}

#ifdef __GNUC__
__attribute__((no_sanitize_address))
#endif
static const char *scan_stack(const uint8_t *stack, size_t n)
{
	VALGRIND_MAKE_MEM_DEFINED(stack, n);
	return found_in(stack, n);
}

/* For the failure report: where on the stack, and what is around it. */
#ifdef __GNUC__
__attribute__((no_sanitize_address))
#endif
static void dump_around(const uint8_t *stack, size_t n, size_t at)
{
	size_t from = at >= 32 ? at - 32 : 0, to = at + 48 < n ? at + 48 : n;
	size_t i;

	fprintf(stderr, "  %zu bytes below the top of the stack:", n - at);
	for (i = from; i < to; i++)
		fprintf(stderr, "%s%02x", (i - from) % 16 ? " " : "\n    ",
			stack[i]);
	fputc('\n', stderr);
}

static void run_op(struct op *o)
{
	pthread_attr_t attr;
	pthread_t t;
	uint8_t *stack;
	const char *w;

	stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(stack, 0xAA, STACK_SIZE);
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, stack, STACK_SIZE);
	heap_leak = NULL;
	watching = 1;
	if (pthread_create(&t, &attr, op_thread, o) != 0) {
		perror("pthread_create");
		exit(1);
	}
	pthread_join(t, NULL);
	watching = 0;
	pthread_attr_destroy(&attr);
	CHECK(o->rv == o->want, "%s: rv 0x%lx, want 0x%lx", o->name,
	      (unsigned long)o->rv, (unsigned long)o->want);
	w = scan_stack(stack, STACK_SIZE);
	if (o->leaks && RUNNING_ON_VALGRIND) {
		/* valgrind owns free(): only the stack can be searched */
		CHECK(w != NULL, "%s: the search finds a PIN left on the stack",
		      o->name);
	} else if (o->leaks) {
		CHECK(heap_leak != NULL && w != NULL,
		      "%s: the search finds a PIN left in a freed block (%s) "
		      "and on the stack (%s)",
		      o->name, heap_leak ? "yes" : "no", w ? "yes" : "no");
	} else {
		CHECK(heap_leak == NULL,
		      "%s: the %s was in a freed heap block", o->name,
		      heap_leak ? heap_leak : "");
		CHECK(w == NULL, "%s: the %s is left on the stack", o->name,
		      w ? w : "");
		if (w != NULL)
			dump_around(stack, STACK_SIZE, found_at);
	}
	munmap(stack, STACK_SIZE);
	printf("%s: %s (heap blocks looked at so far: %zu)\n", o->name,
	       failures ? "checked" : "ok", heap_blocks);
}

/* --- a card: scripted answers, plus the management-key proof --------------- */

static const struct kyso_card_ops *script_ops;

/* GENERAL AUTHENTICATE 9B with 7C { 80 witness 81 challenge }: answers
 * 7C { 82 E(challenge) } as a card holding mgmt_key would. */
static CK_RV card_transmit(struct kyso_card *c, const uint8_t *cmd,
			   size_t len, uint8_t *resp, size_t *resplen)
{
	const uint8_t *d = cmd + 5;

	if (len >= 5 + 22 && cmd[1] == 0x87 && cmd[3] == 0x9B &&
	    cmd[4] == 22 && d[12] == 0x81) {
		resp[0] = 0x7C;
		resp[1] = 10;
		resp[2] = 0x82;
		resp[3] = 8;
		kyso_cipher_ecb(KYSO_DES3, mgmt_key, sizeof(mgmt_key), 1,
				d + 14, 8, resp + 4);
		resp[12] = 0x90;
		resp[13] = 0x00;
		*resplen = 14;
		return CKR_OK;
	}
	return script_ops->transmit(c, cmd, len, resp, resplen);
}

static CK_RV card_begin(struct kyso_card *c)
{
	return script_ops->begin(c);
}

static CK_RV card_end(struct kyso_card *c)
{
	return script_ops->end(c);
}

static void card_release(struct kyso_card *c)
{
	script_ops->release(c);
}

static const struct kyso_card_ops card_ops = {
	card_transmit, card_begin, card_end, card_release};

/* A card answering each command, in order, with these (hex) answers. */
static struct kyso_card *card(const char *const *hex, size_t n)
{
	static const uint8_t atr[] = {0x3B, 0x80, 0x80, 0x01, 0x01};
	uint8_t *bufs[8];
	const uint8_t *resp[8] = {NULL};
	size_t lens[8] = {0}, i;
	struct kyso_card *c;

	for (i = 0; i < n; i++) {
		bufs[i] = malloc(strlen(hex[i]) / 2 + 1);
		lens[i] = (size_t)kyso_unhex(hex[i], bufs[i],
					     strlen(hex[i]) / 2 + 1);
		resp[i] = bufs[i];
	}
	c = kyso_script_card_raw(atr, sizeof(atr), resp, lens, n);
	for (i = 0; i < n; i++)
		free(bufs[i]);
	if (c == NULL) {
		fprintf(stderr, "cannot make a scripted card\n");
		exit(1);
	}
	script_ops = c->ops;
	c->ops = &card_ops;
	return c;
}

static const struct kyso_driver *drv = &kyso_driver_piv;

/* --- the operations ---------------------------------------------------------- */

static void op_login(struct op *o)
{
	int tries;

	o->rv = drv->login(o->card, CKU_USER, (const uint8_t *)PIN,
			   strlen(PIN), &tries);
}

static void op_change(struct op *o)
{
	int tries;

	o->rv = drv->change_pin(o->card, CKU_USER, (const uint8_t *)PIN,
				strlen(PIN), (const uint8_t *)NEW_PIN,
				strlen(NEW_PIN), &tries);
}

static void op_unblock(struct op *o)
{
	int tries;

	o->rv = drv->login(o->card, CKU_SO, (const uint8_t *)PUK, strlen(PUK),
			   &tries);
	if (o->rv == CKR_OK)
		o->rv = drv->unblock(o->card, (const uint8_t *)NEW_PIN,
				     strlen(NEW_PIN), &tries);
}

static void op_puk_logout(struct op *o)
{
	int tries;

	o->rv = drv->login(o->card, CKU_SO, (const uint8_t *)PUK, strlen(PUK),
			   &tries);
	if (o->rv == CKR_OK)
		o->rv = drv->logout(o->card);
}

static void op_puk_unbind(struct op *o)
{
	int tries;

	o->rv = drv->login(o->card, CKU_SO, (const uint8_t *)PUK, strlen(PUK),
			   &tries);
	drv->unbind(o->card);
}

static void op_mgmt(struct op *o)
{
	int tries;

	o->rv = drv->login(o->card, CKU_SO, (const uint8_t *)MGMT,
			   strlen(MGMT), &tries);
	drv->unbind(o->card);
}

/* The self-check: a careless copy of the PIN on the stack and in a freed
 * block, written through volatile pointers so no compiler drops it. */
__attribute__((noinline)) static void careless(volatile uint8_t *dst)
{
	size_t i;

	for (i = 0; i < strlen(PIN); i++)
		dst[i] = (uint8_t)PIN[i];
}

static void op_careless(struct op *o)
{
	volatile uint8_t local[16];
	uint8_t *volatile p = malloc(16);

	careless(local);
	if (p != NULL) {
		careless(p);
		free(p);
	}
	o->rv = local[0] == PIN[0] ? CKR_OK : CKR_GENERAL_ERROR;
}

int main(void)
{
	static const char *const ok[] = {"9000"};
	static const char *const wrong[] = {"63C2"};
	static const char *const witness[] = {"7C0A80081122334455667788"
					      "9000"};
	struct op ops[] = {
		{"VERIFY (right PIN)", op_login, NULL, 0, CKR_OK},
		{"VERIFY (wrong PIN)", op_login, NULL, 0, CKR_PIN_INCORRECT},
		{"CHANGE REFERENCE DATA", op_change, NULL, 0, CKR_OK},
		{"PUK held, RESET RETRY COUNTER", op_unblock, NULL, 0, CKR_OK},
		{"PUK held, then logout", op_puk_logout, NULL, 0, CKR_OK},
		{"PUK held, then unbind", op_puk_unbind, NULL, 0, CKR_OK},
		{"management key", op_mgmt, NULL, 0, CKR_OK},
		{"self-check: a careless copy is found", op_careless, NULL, 0,
		 CKR_OK, 1},
	};
	size_t i;

	/* trace every APDU, so the logging code is searched too */
	setenv("KYSO_DEBUG", "3", 1);
	setenv("KYSO_LOG", "/dev/null", 1);
	kyso_log_init();
	add_pin_pats("PIN", PIN);
	add_pin_pats("new PIN", NEW_PIN);
	add_pat("PIN", PIN, strlen(PIN));
	add_pat("new PIN", NEW_PIN, strlen(NEW_PIN));
	add_pat("PUK", PUK, strlen(PUK));
	add_pat("management key", mgmt_key, 8);
	add_pat("management key", mgmt_key + 8, 8);
	add_pat("management key", mgmt_key + 16, 8);
	install_heap_watch();

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (ops[i].fn == op_mgmt)
			ops[i].card = card(witness, 1);
		else if (ops[i].want == CKR_PIN_INCORRECT)
			ops[i].card = card(wrong, 1);
		else
			ops[i].card = card(ok, 1);
		run_op(&ops[i]);
		drv->unbind(ops[i].card);
		kyso_card_free(ops[i].card);
	}
	/* libcrypto frees through the same watch (the management key's
	 * cipher contexts): the watch is not blind to other libraries */
	if (!RUNNING_ON_VALGRIND)
		CHECK(heap_blocks > 100,
		      "the free() watch saw libcrypto's frees too (%zu blocks)",
		      heap_blocks);
	if (failures) {
		fprintf(stderr, "pin-wipe: %d check(s) failed\n", failures);
		return 1;
	}
	printf("pin-wipe: PASS (%zu freed blocks searched)\n", heap_blocks);
	return 0;
}
