/*
 * test_ring.c: validation tests of ring.c, meant to run under -fsanitize=address,undefined (and
 * the threaded ones under -fsanitize=thread). tests/test_ring_native.py builds and runs it.
 *
 *   test_ring            run every test
 *   test_ring NAME...    run the named tests (see `tests[]` at the bottom)
 *   test_ring --list     print the test names, one a line
 *
 * It includes ring.c so the corruption tests can scribble on the shared header directly.
 * Exit status 0 when every test passed; a failed check prints file:line and exits 1.
 */
#include "ring.c"

#include <stdio.h>
#include <sys/wait.h>

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);             \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                                           \
    do {                                                                                         \
        long long _a = (long long)(a), _b = (long long)(b);                                      \
        if (_a != _b) {                                                                          \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a,  \
                    _a, #b, _b);                                                                 \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

static _Thread_local uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    /* splitmix64: deterministic, so a failure reproduces */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The payload of message `seq` from producer `who`: bytes derived from both, so any loss,
 * duplicate, reorder or torn copy changes what the consumer sees. */
static uint64_t fill(uint8_t *buf, uint32_t who, uint32_t seq, uint64_t len)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(who * 131u + seq * 7u + i * 13u);
        sum += buf[i];
    }
    if (len >= 8) {
        memcpy(buf, &who, 4);
        memcpy(buf + 4, &seq, 4);
    }
    return sum;
}

static int verify(const uint8_t *buf, uint64_t len, uint32_t *who, uint32_t *seq)
{
    if (len < 8)
        return 0;
    memcpy(who, buf, 4);
    memcpy(seq, buf + 4, 4);
    for (uint64_t i = 8; i < len; i++)
        if (buf[i] != (uint8_t)(*who * 131u + *seq * 7u + i * 13u))
            return 0;
    return 1;
}

static fr_ring *anon(uint64_t cap, int contract)
{
    fr_ring *h = NULL;
    CHECK_EQ(fr_ring_open_anonymous(cap, contract, &h), FR_RING_OK);
    fr_ring_set_spin(h, 1000);
    return h;
}

static int tpush(fr_ring *h, const void *v, uint64_t len, int64_t timeout)
{
    return h->contract == FR_RING_MPSC ? fr_ring_push_mpsc(h, v, len, timeout)
                                       : fr_ring_push_spsc(h, v, len, timeout);
}

static int64_t tpush_batch(fr_ring *h, const int64_t *ko, const uint8_t *kd, const uint8_t *kv,
                          const int64_t *vo, const uint8_t *vd, const uint8_t *vv, uint64_t n,
                          int64_t timeout)
{
    return h->contract == FR_RING_MPSC
               ? fr_ring_push_batch_mpsc(h, ko, kd, kv, vo, vd, vv, n, timeout)
               : fr_ring_push_batch_spsc(h, ko, kd, kv, vo, vd, vv, n, timeout);
}

/* fr_ring_pop with a status return: FR_RING_OK with *len = the length, the info[1] bits for a
 * noted success (FR_RING_SKIPPED, FR_RING_NULL_VALUE), or the failure status (*len = the
 * length needed for FR_RING_SMALL_BUFFER). */
static int pop1(fr_ring *h, char *out, uint64_t cap, int64_t timeout, uint64_t *len)
{
    uint64_t info[2] = {0, 0};
    int64_t r = fr_ring_pop(h, out, cap, timeout, info);
    if (r >= 0) {
        *len = (uint64_t)r;
        return FR_RING_OK;
    }
    if (r == FR_RING_NOTED) {
        *len = info[0];
        return (int)info[1];
    }
    if (r == FR_RING_SMALL_BUFFER)
        *len = info[0];
    return (int)r;
}

/* ------------------------------------------------------------------ single thread */

static void test_capacity(void)
{
    fr_ring *h = NULL;
    CHECK_EQ(fr_ring_check_capacity(4096), FR_RING_OK);
    CHECK_EQ(fr_ring_check_capacity(1ULL << 32), FR_RING_OK);
    CHECK_EQ(fr_ring_check_capacity(2048), FR_RING_INVALID);
    CHECK_EQ(fr_ring_check_capacity(4097), FR_RING_INVALID);
    CHECK_EQ(fr_ring_check_capacity(1ULL << 33), FR_RING_INVALID);
    CHECK_EQ(fr_ring_open_anonymous(6000, FR_RING_MPSC, &h), FR_RING_INVALID);
    CHECK_EQ(fr_ring_open_anonymous(4096, 7, &h), FR_RING_INVALID);
}

static void test_push_pop_wrap(int contract)
{
    /* many laps of random sizes: every wrap needs a padding record somewhere */
    fr_ring *h = anon(4096, contract);
    uint8_t in[600], out[600];
    uint64_t len_out;
    uint32_t pushed = 0, popped = 0;
    for (int round = 0; round < 20000; round++) {
        uint64_t len = 8 + rnd() % (512 - 8);
        if (rnd() % 3) {
            fill(in, 1, pushed, len);
            int rc = tpush(h, in, len, 0);
            if (rc == FR_RING_OK)
                pushed++;
            else
                CHECK_EQ(rc, FR_RING_FULL);
        } else {
            int rc = pop1(h, (char *)out, sizeof out, 0, &len_out);
            if (pushed == popped) {
                CHECK_EQ(rc, FR_RING_EMPTY);
                continue;
            }
            CHECK_EQ(rc, FR_RING_OK);
            uint32_t who, seq;
            CHECK(verify(out, len_out, &who, &seq));
            CHECK_EQ(who, 1);
            CHECK_EQ(seq, popped);
            popped++;
        }
        uint64_t st[FR_STAT_N];
        fr_ring_stats(h, st);
        CHECK_EQ(st[FR_STAT_COUNT], pushed - popped);
        CHECK(st[FR_STAT_BYTES_USED] <= 4096);
    }
    CHECK(pushed > 1000);
    fr_ring_free(h);
}

static void test_push_pop_wrap_spsc(void) { test_push_pop_wrap(FR_RING_SPSC); }
static void test_push_pop_wrap_mpsc(void) { test_push_pop_wrap(FR_RING_MPSC); }

static void test_full_exact(void)
{
    /* 4096 bytes hold exactly 64 records of 64 bytes (8 header + 56 payload) */
    fr_ring *h = anon(4096, FR_RING_MPSC);
    uint8_t v[56] = {0};
    for (int i = 0; i < 64; i++)
        CHECK_EQ(tpush(h, v, 56, 0), FR_RING_OK);
    CHECK_EQ(tpush(h, v, 56, 0), FR_RING_FULL);
    CHECK_EQ(tpush(h, v, 0, 0), FR_RING_FULL);
    uint64_t st[FR_STAT_N];
    fr_ring_stats(h, st);
    CHECK_EQ(st[FR_STAT_BYTES_USED], 4096);
    char out[64];
    uint64_t len;
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_OK);
    CHECK_EQ(tpush(h, v, 56, 0), FR_RING_OK);
    /* too big is refused at once, whatever the timeout */
    uint8_t big[513] = {0};
    CHECK_EQ(tpush(h, big, 513, -1), FR_RING_TOO_BIG);
    fr_ring_free(h);
}

static void test_small_buffer(void)
{
    fr_ring *h = anon(1 << 16, FR_RING_SPSC);
    uint8_t v[300];
    fill(v, 2, 0, sizeof v);
    CHECK_EQ(tpush(h, v, sizeof v, 0), FR_RING_OK);
    char out[300];
    uint64_t len = 0;
    CHECK_EQ(pop1(h, out, 100, 0, &len), FR_RING_SMALL_BUFFER);
    CHECK_EQ(len, 300);
    CHECK_EQ(pop1(h, out, 300, 0, &len), FR_RING_OK);
    CHECK(memcmp(out, v, 300) == 0);
    /* the registered-buffer form: refused before registration, then the same rules */
    CHECK_EQ(fr_ring_pop_registered(h, 0), FR_RING_INVALID);
    uint64_t info[2] = {0, 0};
    fr_ring_set_pop_buffers(h, out, 100, info);
    CHECK_EQ(tpush(h, v, sizeof v, 0), FR_RING_OK);
    CHECK_EQ(fr_ring_pop_registered(h, 0), FR_RING_SMALL_BUFFER);
    CHECK_EQ(info[0], 300);
    fr_ring_set_pop_buffers(h, out, sizeof out, info);
    CHECK_EQ(fr_ring_pop_registered(h, 0), 300);
    CHECK(memcmp(out, v, 300) == 0);
    CHECK_EQ(fr_ring_pop_registered(h, 0), FR_RING_EMPTY);
    CHECK_EQ(fr_ring_pop_registered(fr_ring_detached(), 0), FR_RING_DETACHED);
    fr_ring_free(h);
}

static void test_batch_roundtrip(int contract)
{
    /* keys present / null / empty, values present / null / empty, wrapping many times */
    fr_ring *h = anon(1 << 13, contract);
    enum { N = 37 };
    int64_t ko[N + 1], vo[N + 1];
    uint8_t kd[N * 40], vd[N * 60], kv[N], vv[N];
    for (int lap = 0; lap < 300; lap++) {
        uint64_t kp = 0, vp = 0;
        ko[0] = vo[0] = 0;
        for (int i = 0; i < N; i++) {
            kv[i] = (uint8_t)((i + lap) % 5 != 0);
            vv[i] = (uint8_t)((i + lap) % 7 != 0);
            uint64_t kl = kv[i] ? rnd() % 40 : 0, vl = vv[i] ? rnd() % 60 : 0;
            for (uint64_t j = 0; j < kl; j++)
                kd[kp + j] = (uint8_t)rnd();
            for (uint64_t j = 0; j < vl; j++)
                vd[vp + j] = (uint8_t)rnd();
            kp += kl;
            vp += vl;
            ko[i + 1] = (int64_t)kp;
            vo[i + 1] = (int64_t)vp;
        }
        CHECK_EQ(tpush_batch(h, ko, kd, kv, vo, vd, vv, N, 0), N);
        uint64_t got = 0;
        while (got < N) {
            uint64_t info[FR_PEEK_INFO_N];
            uint64_t max = 1 + rnd() % N;
            CHECK_EQ(fr_ring_peek_batch(h, max, UINT64_MAX, 0, info), FR_RING_OK);
            uint64_t n = info[FR_PEEK_N];
            CHECK(n >= 1 && n <= max && got + n <= N);
            int64_t oko[N + 1], ovo[N + 1];
            uint8_t okd[N * 40 + 1], ovd[N * 60 + 1], okv[N], ovv[N];
            CHECK_EQ(fr_ring_take_batch(h, oko, okd, okv, ovo, ovd, ovv), FR_RING_OK);
            uint64_t knulls = 0, vnulls = 0;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t s = got + i;
                CHECK_EQ(okv[i], kv[s]);
                CHECK_EQ(ovv[i], vv[s]);
                knulls += !kv[s];
                vnulls += !vv[s];
                CHECK_EQ(oko[i + 1] - oko[i], ko[s + 1] - ko[s]);
                CHECK_EQ(ovo[i + 1] - ovo[i], vo[s + 1] - vo[s]);
                CHECK(memcmp(okd + oko[i], kd + ko[s], (size_t)(ko[s + 1] - ko[s])) == 0);
                CHECK(memcmp(ovd + ovo[i], vd + vo[s], (size_t)(vo[s + 1] - vo[s])) == 0);
            }
            CHECK_EQ(info[FR_PEEK_KEY_NULLS], knulls);
            CHECK_EQ(info[FR_PEEK_VALUE_NULLS], vnulls);
            CHECK_EQ(info[FR_PEEK_KEY_BYTES], oko[n]);
            CHECK_EQ(info[FR_PEEK_VALUE_BYTES], ovo[n]);
            got += n;
        }
        uint64_t info[FR_PEEK_INFO_N];
        CHECK_EQ(fr_ring_peek_batch(h, 10, UINT64_MAX, 0, info), FR_RING_EMPTY);
    }
    fr_ring_free(h);
}

static void test_batch_roundtrip_spsc(void) { test_batch_roundtrip(FR_RING_SPSC); }
static void test_batch_roundtrip_mpsc(void) { test_batch_roundtrip(FR_RING_MPSC); }

static void test_batch_partial_and_limits(void)
{
    fr_ring *h = anon(4096, FR_RING_MPSC);
    enum { N = 100 };
    int64_t vo[N + 1];
    uint8_t vd[N * 56];
    memset(vd, 7, sizeof vd);
    for (int i = 0; i <= N; i++)
        vo[i] = 56 * i;
    /* 64-byte records: 64 fit, whole messages only */
    CHECK_EQ(tpush_batch(h, NULL, NULL, NULL, vo, vd, NULL, N, 0), 64);
    CHECK_EQ(tpush_batch(h, NULL, NULL, NULL, vo, vd, NULL, N, 0), FR_RING_FULL);
    uint64_t info[FR_PEEK_INFO_N];
    /* max_bytes: 56-byte values, 200 bytes allow 3; the first always goes */
    CHECK_EQ(fr_ring_peek_batch(h, 100, 200, 0, info), FR_RING_OK);
    CHECK_EQ(info[FR_PEEK_N], 3);
    CHECK_EQ(info[FR_PEEK_KEY_NULLS], 3);
    CHECK_EQ(fr_ring_peek_batch(h, 100, 1, 0, info), FR_RING_OK);
    CHECK_EQ(info[FR_PEEK_N], 1);
    /* a second peek replaces the first; take needs a peek */
    int64_t oo[101], oo2[101];
    uint8_t od[64 * 56], ov[100], ov2[100], okd[1];
    CHECK_EQ(fr_ring_take_batch(h, oo, okd, ov, oo2, od, ov2), FR_RING_OK);
    CHECK_EQ(fr_ring_take_batch(h, oo, okd, ov, oo2, od, ov2), FR_RING_INVALID);
    CHECK_EQ(fr_ring_peek_batch(h, 0, 1, 0, info), FR_RING_INVALID);
    /* a too-big message anywhere in the batch: nothing goes in */
    fr_ring_free(h);
    h = anon(4096, FR_RING_SPSC);
    int64_t bo[4] = {0, 10, 20, 20 + 513};
    uint8_t bd[600] = {0};
    CHECK_EQ(tpush_batch(h, NULL, NULL, NULL, bo, bd, NULL, 3, -1), FR_RING_TOO_BIG);
    uint64_t st[FR_STAT_N];
    fr_ring_stats(h, st);
    CHECK_EQ(st[FR_STAT_COUNT], 0);
    CHECK_EQ(st[FR_STAT_TAIL], 0);
    /* decreasing offsets are refused */
    int64_t bad[3] = {0, 10, 5};
    CHECK_EQ(tpush_batch(h, NULL, NULL, NULL, bad, bd, NULL, 2, 0), FR_RING_INVALID);
    /* wrong contract for the function */
    CHECK_EQ(fr_ring_push_mpsc(h, (const char *)bd, 1, 0), FR_RING_INVALID);
    fr_ring_free(h);
}

static void test_close(void)
{
    fr_ring *h = anon(4096, FR_RING_MPSC);
    CHECK_EQ(tpush(h, "abc", 3, 0), FR_RING_OK);
    fr_ring_close(h);
    CHECK_EQ(tpush(h, "abc", 3, 0), FR_RING_CLOSED);
    char out[8];
    uint64_t len;
    CHECK_EQ(pop1(h, out, 8, -1, &len), FR_RING_OK);
    CHECK_EQ(len, 3);
    CHECK_EQ(pop1(h, out, 8, -1, &len), FR_RING_CLOSED);
    uint64_t info[FR_PEEK_INFO_N];
    CHECK_EQ(fr_ring_peek_batch(h, 4, UINT64_MAX, -1, info), FR_RING_CLOSED);
    fr_ring_free(h);
}

static void test_detached(void)
{
    fr_ring *d = fr_ring_detached();
    char out[4];
    uint64_t len, info[FR_PEEK_INFO_N], st[FR_STAT_N];
    CHECK_EQ(fr_ring_push_mpsc(d, "a", 1, 0), FR_RING_DETACHED);
    CHECK_EQ(pop1(d, out, 4, 0, &len), FR_RING_DETACHED);
    CHECK_EQ(fr_ring_peek_batch(d, 1, 1, 0, info), FR_RING_DETACHED);
    fr_ring_stats(d, st);
    CHECK_EQ(st[FR_STAT_CAPACITY], 0);
    fr_ring_close(d);
    fr_ring_free(d);
}

static void test_named(void)
{
    char name[64];
    snprintf(name, sizeof name, "/fr-test-%d", (int)getpid());
    fr_ring *a = NULL, *b = NULL;
    CHECK_EQ(fr_ring_create(name, 8192, FR_RING_SPSC, &a), FR_RING_OK);
    CHECK_EQ(fr_ring_create(name, 8192, FR_RING_SPSC, &b), FR_RING_SYSTEM);
    CHECK_EQ(errno, EEXIST);
    struct stat st;
    char path[96];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    uint32_t version = 0;
    CHECK_EQ(fr_ring_attach(name, &b, &version), FR_RING_OK);
    CHECK_EQ(b->cap, 8192);
    CHECK_EQ(b->contract, FR_RING_SPSC);
    CHECK_EQ(tpush(a, "hello", 5, 0), FR_RING_OK);
    char out[8];
    uint64_t len;
    CHECK_EQ(pop1(b, out, 8, 0, &len), FR_RING_OK);
    CHECK(len == 5 && memcmp(out, "hello", 5) == 0);
    /* another layout version, then memory that is not a ring */
    a->hdr->version = 99;
    fr_ring_free(b);
    CHECK_EQ(fr_ring_attach(name, &b, &version), FR_RING_BAD_VERSION);
    CHECK_EQ(version, 99);
    a->hdr->version = FR_RING_VERSION;
    atomic_store(&a->hdr->magic, 12345);
    CHECK_EQ(fr_ring_attach(name, &b, &version), FR_RING_NOT_A_RING);
    atomic_store(&a->hdr->magic, MAGIC);
    a->hdr->capacity = 1 << 20; /* disagrees with the size of the memory */
    CHECK_EQ(fr_ring_attach(name, &b, &version), FR_RING_NOT_A_RING);
    CHECK_EQ(fr_ring_unlink(name), FR_RING_OK);
    CHECK_EQ(fr_ring_attach(name, &b, &version), FR_RING_SYSTEM);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(fr_ring_unlink(name), FR_RING_SYSTEM);
    fr_ring_free(a);
}

/* ------------------------------------------------------------------ threads */

enum { PRODUCERS = 4, PER_PRODUCER = 20000 };

typedef struct {
    fr_ring *h;
    uint32_t who;
    int batch;
} producer_arg;

static void *producer(void *p)
{
    producer_arg *a = p;
    uint8_t buf[64 * 200];
    int64_t vo[65];
    uint32_t seq = 0;
    while (seq < PER_PRODUCER) {
        if (a->batch) {
            uint64_t n = 1 + rnd() % 64, pos = 0;
            if (n > PER_PRODUCER - seq)
                n = PER_PRODUCER - seq;
            vo[0] = 0;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t len = 8 + (seq + i) % 150;
                fill(buf + pos, a->who, seq + (uint32_t)i, len);
                pos += len;
                vo[i + 1] = (int64_t)pos;
            }
            int64_t r = tpush_batch(a->h, NULL, NULL, NULL, vo, buf, NULL, n, -1);
            CHECK_EQ(r, n);
            seq += (uint32_t)n;
        } else {
            uint64_t len = 8 + seq % 150;
            fill(buf, a->who, seq, len);
            CHECK_EQ(tpush(a->h, buf, len, -1), FR_RING_OK);
            seq++;
        }
    }
    return NULL;
}

static void run_threads(int contract, int producers, int batch)
{
    fr_ring *h = anon(1 << 14, contract);
    pthread_t t[PRODUCERS];
    producer_arg args[PRODUCERS];
    for (int i = 0; i < producers; i++) {
        args[i] = (producer_arg){h, (uint32_t)i, batch ^ (i & 1)};
        CHECK_EQ(pthread_create(&t[i], NULL, producer, &args[i]), 0);
    }
    uint32_t next[PRODUCERS] = {0};
    uint64_t total = 0, want = (uint64_t)producers * PER_PRODUCER;
    char out[256];
    static int64_t ko[513], vo[513];
    static uint8_t kd[1], vd[512 * 160], kv[512], vv[512];
    while (total < want) {
        if (rnd() & 1) {
            uint64_t len;
            CHECK_EQ(pop1(h, out, sizeof out, -1, &len), FR_RING_OK);
            uint32_t who, seq;
            CHECK(verify((uint8_t *)out, len, &who, &seq));
            CHECK(who < (uint32_t)producers);
            CHECK_EQ(seq, next[who]);
            next[who]++;
            total++;
        } else {
            uint64_t info[FR_PEEK_INFO_N];
            CHECK_EQ(fr_ring_peek_batch(h, 512, UINT64_MAX, -1, info), FR_RING_OK);
            CHECK(info[FR_PEEK_VALUE_BYTES] <= sizeof vd);
            CHECK_EQ(fr_ring_take_batch(h, ko, kd, kv, vo, vd, vv), FR_RING_OK);
            for (uint64_t i = 0; i < info[FR_PEEK_N]; i++) {
                uint32_t who, seq;
                CHECK(verify(vd + vo[i], (uint64_t)(vo[i + 1] - vo[i]), &who, &seq));
                CHECK(who < (uint32_t)producers);
                CHECK_EQ(seq, next[who]);
                next[who]++;
            }
            total += info[FR_PEEK_N];
        }
    }
    for (int i = 0; i < producers; i++)
        pthread_join(t[i], NULL);
    uint64_t len;
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_EMPTY);
    uint64_t st[FR_STAT_N];
    fr_ring_stats(h, st);
    CHECK_EQ(st[FR_STAT_COUNT], 0);
    CHECK_EQ(st[FR_STAT_BYTES_USED], 0);
    fr_ring_free(h);
}

static void test_threads_spsc(void) { run_threads(FR_RING_SPSC, 1, 1); }
static void test_threads_mpsc(void) { run_threads(FR_RING_MPSC, PRODUCERS, 1); }

typedef struct {
    fr_ring *h;
    int rc;
    int64_t timeout;
} waiter_arg;

static void *blocked_pop(void *p)
{
    waiter_arg *a = p;
    char out[16];
    uint64_t len;
    a->rc = pop1(a->h, out, sizeof out, a->timeout, &len);
    return NULL;
}

static void *blocked_push(void *p)
{
    waiter_arg *a = p;
    uint8_t v[56] = {0};
    a->rc = tpush(a->h, v, 56, a->timeout);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_blocking(void)
{
    /* a consumer asleep on an empty ring wakes for a push; a producer asleep on a full ring
     * wakes for a pop; close wakes both kinds */
    fr_ring *h = anon(4096, FR_RING_MPSC);
    pthread_t t;
    waiter_arg a = {h, 99, -1};
    pthread_create(&t, NULL, blocked_pop, &a);
    sleep_ms(30);
    CHECK_EQ(tpush(h, "x", 1, 0), FR_RING_OK);
    pthread_join(t, NULL);
    CHECK_EQ(a.rc, FR_RING_OK);

    uint8_t v[56] = {0};
    int filled = 0;
    while (tpush(h, v, 56, 0) == FR_RING_OK)
        filled++;
    CHECK_EQ(filled, 63); /* head is at 16: the 64th record would need a 48-byte pad */
    a = (waiter_arg){h, 99, -1};
    pthread_create(&t, NULL, blocked_push, &a);
    sleep_ms(30);
    char out[64];
    uint64_t len;
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_OK);
    pthread_join(t, NULL);
    CHECK_EQ(a.rc, FR_RING_OK);

    /* timeouts expire */
    int64_t t0 = now_ns();
    CHECK_EQ(tpush(h, v, 56, 20000000), FR_RING_FULL);
    CHECK(now_ns() - t0 >= 20000000);

    a = (waiter_arg){h, 99, -1};
    pthread_create(&t, NULL, blocked_push, &a);
    sleep_ms(30);
    fr_ring_close(h);
    pthread_join(t, NULL);
    CHECK_EQ(a.rc, FR_RING_CLOSED);
    fr_ring_free(h);

    h = anon(4096, FR_RING_SPSC);
    a = (waiter_arg){h, 99, -1};
    pthread_create(&t, NULL, blocked_pop, &a);
    sleep_ms(30);
    fr_ring_close(h);
    pthread_join(t, NULL);
    CHECK_EQ(a.rc, FR_RING_CLOSED);
    t0 = now_ns();
    CHECK_EQ(pop1(h, out, sizeof out, 20000000, &len), FR_RING_CLOSED);
    fr_ring_free(h);

    h = anon(4096, FR_RING_SPSC);
    t0 = now_ns();
    CHECK_EQ(pop1(h, out, sizeof out, 20000000, &len), FR_RING_EMPTY);
    CHECK(now_ns() - t0 >= 20000000);
    fr_ring_free(h);
}

/* ------------------------------------------------------------------ crashes */

/* A child process claims room and stops mid-write (stage as in fr_ring_test_stall_producer);
 * `reap` decides whether the parent reaps it (gone) or leaves it a zombie. */
static void dead_producer(int contract, int stage, int reap)
{
    fr_ring *h = anon(1 << 14, contract);
    fr_ring_set_liveness(h, 50000000);
    CHECK_EQ(tpush(h, "before..", 8, 0), FR_RING_OK);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int rc = fr_ring_test_stall_producer(h, 100, stage);
        _exit(rc == FR_RING_OK ? 0 : 3);
    }
    int status = 0;
    if (reap) {
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    } else {
        /* wait for the claim without reaping the child */
        while (atomic_load(&h->hdr->tail) == 16)
            sleep_ms(1);
        sleep_ms(20);
    }
    CHECK_EQ(tpush(h, "after...", 8, 0), FR_RING_OK);
    char out[16];
    uint64_t len;
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_OK);
    CHECK(len == 8 && memcmp(out, "before..", 8) == 0);
    /* the dead span blocks the reader until the liveness timeout */
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_EMPTY);
    int64_t t0 = now_ns();
    CHECK_EQ(pop1(h, out, sizeof out, 2000000000LL, &len), FR_RING_SKIPPED);
    CHECK(now_ns() - t0 >= 40000000);
    CHECK(len == 8 && memcmp(out, "after...", 8) == 0);
    uint64_t st[FR_STAT_N];
    fr_ring_stats(h, st);
    CHECK_EQ(st[FR_STAT_SKIPPED], 1);
    CHECK_EQ(st[FR_STAT_SKIPPED_BYTES], 112);
    CHECK_EQ(st[FR_STAT_BYTES_USED], 0);
    /* the ring still works across many laps */
    uint8_t v[200];
    for (uint32_t i = 0; i < 2000; i++) {
        fill(v, 5, i, 200);
        CHECK_EQ(tpush(h, v, 200, 0), FR_RING_OK);
        CHECK_EQ(pop1(h, out, 0, 0, &len), FR_RING_SMALL_BUFFER);
        uint8_t big[256];
        CHECK_EQ(pop1(h, (char *)big, sizeof big, 0, &len), FR_RING_OK);
        CHECK(memcmp(big, v, 200) == 0);
    }
    if (!reap)
        waitpid(pid, &status, 0);
    fr_ring_free(h);
}

static void test_dead_producer(void)
{
    dead_producer(FR_RING_MPSC, 0, 1);
    dead_producer(FR_RING_MPSC, 1, 1);
    dead_producer(FR_RING_SPSC, 1, 1);
    dead_producer(FR_RING_MPSC, 1, 0);
    dead_producer(FR_RING_SPSC, 1, 0);
}

static void test_live_producer_not_skipped(void)
{
    /* a stalled writer whose process is alive (this one) is never skipped */
    fr_ring *h = anon(1 << 14, FR_RING_MPSC);
    fr_ring_set_liveness(h, 10000000);
    CHECK_EQ(fr_ring_test_stall_producer(h, 100, 1), FR_RING_OK);
    CHECK_EQ(tpush(h, "after...", 8, 0), FR_RING_OK);
    char out[16];
    uint64_t len;
    CHECK_EQ(pop1(h, out, sizeof out, 100000000, &len), FR_RING_EMPTY);
    uint64_t st[FR_STAT_N];
    fr_ring_stats(h, st);
    CHECK_EQ(st[FR_STAT_SKIPPED], 0);
    fr_ring_free(h);
}

static void test_paused_claimer_not_skipped(void)
{
    /* mpsc: a producer paused between its claim and its marker reads like one that died there;
     * the consumer scans twice before skipping, so one that resumes in between is kept */
    fr_ring *h = anon(1 << 14, FR_RING_MPSC);
    fr_ring_set_liveness(h, 40000000);
    CHECK_EQ(fr_ring_test_stall_producer(h, 100, 0), FR_RING_OK);
    char out[128];
    uint64_t len;
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_EMPTY); /* the stall clock starts */
    sleep_ms(45);
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_EMPTY); /* first scan */
    uint64_t head = atomic_load(&h->hdr->head), span = atomic_load(&h->hdr->tail) - head;
    fr_ring_test_poke(h, head, make_word((uint32_t)-(int32_t)span, self_pid())); /* resumes */
    sleep_ms(20);
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_EMPTY);
    uint64_t st[FR_STAT_N];
    fr_ring_stats(h, st);
    CHECK_EQ(st[FR_STAT_SKIPPED], 0);
    /* it finishes its write: the message arrives */
    uint8_t v[100];
    fill(v, 9, 0, 100);
    memcpy(h->data + (head & h->mask) + 8, v, 100);
    fr_ring_test_poke(h, head, make_word(108, KIND_MSG));
    CHECK_EQ(pop1(h, out, sizeof out, 0, &len), FR_RING_OK);
    CHECK(len == 100 && memcmp(out, v, 100) == 0);
    fr_ring_free(h);
}

static void dead_consumer(int contract, int stage)
{
    char name[64];
    snprintf(name, sizeof name, "/fr-test-dc-%d-%d", (int)getpid(), contract * 10 + stage);
    fr_ring *h = NULL;
    CHECK_EQ(fr_ring_create(name, 8192, contract, &h), FR_RING_OK);
    uint8_t v[100];
    for (uint32_t i = 0; i < 10; i++) {
        fill(v, 7, i, 100);
        CHECK_EQ(tpush(h, v, 100, 0), FR_RING_OK);
    }
    pid_t pid = fork();
    if (pid == 0) {
        fr_ring *c = NULL;
        uint32_t version;
        if (fr_ring_attach(name, &c, &version) != FR_RING_OK)
            _exit(3);
        char out[128];
        uint64_t len;
        if (pop1(c, out, sizeof out, 0, &len) != FR_RING_OK) /* message 0: consumed */
            _exit(4);
        kill(getpid(), SIGKILL); /* killed between two reads */
        _exit(5);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* the next consumer is killed in the middle of reading message 1 */
    pid = fork();
    if (pid == 0) {
        fr_ring *c = NULL;
        uint32_t version;
        if (fr_ring_attach(name, &c, &version) != FR_RING_OK)
            _exit(3);
        if (fr_ring_test_stall_consumer(c, stage) != FR_RING_OK)
            _exit(4);
        kill(getpid(), SIGKILL);
        _exit(5);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* the next consumer: stage 0 rereads message 1; stage 1 had consumed it */
    fr_ring *c = NULL;
    uint32_t version;
    CHECK_EQ(fr_ring_attach(name, &c, &version), FR_RING_OK);
    uint32_t expect = stage == 0 ? 1 : 2;
    char out[128];
    uint64_t len;
    for (; expect < 10; expect++) {
        CHECK_EQ(pop1(c, out, sizeof out, 0, &len), FR_RING_OK);
        uint32_t who, seq;
        CHECK(verify((uint8_t *)out, len, &who, &seq));
        CHECK_EQ(seq, expect);
    }
    CHECK_EQ(pop1(c, out, sizeof out, 0, &len), FR_RING_EMPTY);
    /* the space the dead reader held is handed back (and zeroed under mpsc): fill the ring */
    uint64_t st[FR_STAT_N];
    fr_ring_stats(c, st);
    CHECK_EQ(st[FR_STAT_BYTES_USED], 0);
    for (uint32_t lap = 0; lap < 50; lap++) {
        uint32_t n = 0;
        while (tpush(h, v, 100, 0) == FR_RING_OK)
            n++;
        CHECK(n >= 8192 / 112 - 1 && n <= 8192 / 112); /* one less when a pad is needed */
        for (uint32_t i = 0; i < n; i++)
            CHECK_EQ(pop1(c, out, sizeof out, 0, &len), FR_RING_OK);
    }
    fr_ring_unlink(name);
    fr_ring_free(c);
    fr_ring_free(h);
}

static void test_dead_consumer(void)
{
    dead_consumer(FR_RING_MPSC, 0);
    dead_consumer(FR_RING_MPSC, 1);
    dead_consumer(FR_RING_SPSC, 0);
    dead_consumer(FR_RING_SPSC, 1);
}

/* ------------------------------------------------------------------ corruption */

static void test_corruption(void)
{
    /* random scribbles on headers, positions and record words: every operation must return,
     * and under the address sanitizer none may touch memory outside the region */
    for (int round = 0; round < 3000; round++) {
        int contract = round & 1 ? FR_RING_MPSC : FR_RING_SPSC;
        fr_ring *h = anon(4096, contract);
        fr_ring_set_liveness(h, 0);
        uint8_t v[300];
        int64_t ko[9], vo[9];
        uint8_t kd[8 * 20];
        memset(kd, 1, sizeof kd);
        for (int i = 0; i < 9; i++)
            ko[i] = 20 * i, vo[i] = 30 * i;
        for (int i = 0; i < 6; i++) {
            tpush(h, v, rnd() % 300, 0);
            tpush_batch(h, ko, kd, NULL, vo, v, NULL, 8, 0);
            char out[300];
            uint64_t len;
            if (rnd() & 1)
                pop1(h, out, sizeof out, 0, &len);
        }
        int scribbles = 1 + (int)(rnd() % 3);
        for (int s = 0; s < scribbles; s++) {
            uint64_t word = rnd();
            switch (rnd() % 6) {
            case 0: atomic_store(&h->hdr->head, rnd() % 3 ? h->hdr->head + rnd() % 64 : word); break;
            case 1: atomic_store(&h->hdr->tail, rnd() % 3 ? h->hdr->tail + rnd() % 64 : word); break;
            case 2: atomic_store(&h->hdr->free, rnd() % 3 ? h->hdr->free - rnd() % 64 : word); break;
            case 3: fr_ring_test_poke(h, atomic_load(&h->hdr->head), rnd() % 2 ? word : (word & 0xffffffff00000000ULL) | (rnd() % 9000)); break;
            default: fr_ring_test_poke(h, rnd() % 4096, rnd() % 2 ? word : make_word((uint32_t)(rnd() % 5000), (uint32_t)(rnd() % 0x400))); break;
            }
        }
        for (int op = 0; op < 20; op++) {
            char out[600];
            uint64_t len, info[FR_PEEK_INFO_N];
            static int64_t oko[600], ovo[600];
            static uint8_t okd[5000], ovd[5000], okv[600], ovv[600];
            switch (rnd() % 4) {
            case 0: pop1(h, out, sizeof out, 0, &len); break;
            case 1:
                if (fr_ring_peek_batch(h, 500, UINT64_MAX, 0, info) >= 0) {
                    CHECK(info[FR_PEEK_N] <= 500);
                    CHECK(info[FR_PEEK_KEY_BYTES] <= 4096 && info[FR_PEEK_VALUE_BYTES] <= 4096);
                    if (rnd() % 4 == 0) /* scribble between peek and take */
                        fr_ring_test_poke(h, atomic_load(&h->hdr->head) + 8 * (rnd() % 8), rnd());
                    fr_ring_take_batch(h, oko, okd, okv, ovo, ovd, ovv);
                }
                break;
            case 2: tpush(h, v, rnd() % 300, 0); break;
            default: tpush_batch(h, ko, kd, NULL, vo, v, NULL, 8, 0); break;
            }
        }
        uint64_t st[FR_STAT_N];
        fr_ring_stats(h, st);
        CHECK(st[FR_STAT_BYTES_USED] <= 4096);
        fr_ring_free(h);
    }
}

/* ------------------------------------------------------------------ driver */

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"capacity", test_capacity},
    {"push_pop_wrap_spsc", test_push_pop_wrap_spsc},
    {"push_pop_wrap_mpsc", test_push_pop_wrap_mpsc},
    {"full_exact", test_full_exact},
    {"small_buffer", test_small_buffer},
    {"batch_roundtrip_spsc", test_batch_roundtrip_spsc},
    {"batch_roundtrip_mpsc", test_batch_roundtrip_mpsc},
    {"batch_partial_and_limits", test_batch_partial_and_limits},
    {"close", test_close},
    {"detached", test_detached},
    {"named", test_named},
    {"threads_spsc", test_threads_spsc},
    {"threads_mpsc", test_threads_mpsc},
    {"blocking", test_blocking},
    {"dead_producer", test_dead_producer},
    {"live_producer_not_skipped", test_live_producer_not_skipped},
    {"paused_claimer_not_skipped", test_paused_claimer_not_skipped},
    {"dead_consumer", test_dead_consumer},
    {"corruption", test_corruption},
};

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int wanted = argc == 1;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], tests[i].name) == 0;
        if (!wanted)
            continue;
        int64_t t0 = now_ns();
        tests[i].fn();
        printf("ok %s (%.1f ms)\n", tests[i].name, (double)(now_ns() - t0) / 1e6);
        fflush(stdout);
        ran++;
    }
    if (ran == 0 || (argc > 1 && ran != argc - 1)) {
        fprintf(stderr, "unknown test name among the arguments\n");
        return 2;
    }
    printf("%d tests passed\n", ran);
    return 0;
}
