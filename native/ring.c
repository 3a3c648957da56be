/*
 * ring.c: the byte ring described in ring.h (layout, record format, commit protocol).
 *
 * Every access to the data area goes through `pos & mask` with a length already checked
 * against the end of the area, so a corrupt header or position can make an operation fail
 * (FR_RING_CORRUPT) or wait, never touch memory outside the region.
 */
#define _GNU_SOURCE
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LINE 128
#define MAGIC 0x474e495254534146ULL /* the bytes "FASTRING" read as a little-endian word */

#define KIND_MSG 1u
#define KIND_PAD 2u
#define KIND_MASK 0xffu
#define FLAG_KEY 0x100u
#define FLAG_VALUE_NULL 0x200u
#define FLAGS_KNOWN (FLAG_KEY | FLAG_VALUE_NULL)

#define DEFAULT_LIVENESS_NS 3000000000LL
#define DEFAULT_SPIN_NS 50000LL
#define STALL_SLICE_MAX_NS 100000000LL
#define ATTACH_WAIT_NS 1000000000LL

struct fr_ring_header {
    /* line 0: written once at creation (magic last), then only read, except `closed` */
    _Alignas(LINE) _Atomic uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t capacity;
    uint32_t contract;
    uint32_t creator_pid;
    _Atomic uint32_t closed;

    /* line 1: producers */
    _Alignas(LINE) _Atomic uint64_t tail;
    _Atomic uint64_t pushed;

    /* line 2: consumer */
    _Alignas(LINE) _Atomic uint64_t head;
    _Atomic uint64_t free;
    _Atomic uint64_t popped;
    _Atomic uint64_t skipped;
    _Atomic uint64_t skipped_bytes;

    /* line 3: consumers sleep here waiting for data */
    _Alignas(LINE) _Atomic uint32_t data_seq;
    _Atomic uint32_t data_waiters;

    /* line 4: producers sleep here waiting for space */
    _Alignas(LINE) _Atomic uint32_t space_seq;
    _Atomic uint32_t space_waiters;
};

_Static_assert(offsetof(struct fr_ring_header, tail) == 1 * LINE, "producer line");
_Static_assert(offsetof(struct fr_ring_header, head) == 2 * LINE, "consumer line");
_Static_assert(offsetof(struct fr_ring_header, data_seq) == 3 * LINE, "data wait line");
_Static_assert(offsetof(struct fr_ring_header, space_seq) == 4 * LINE, "space wait line");
_Static_assert(sizeof(struct fr_ring_header) <= FR_RING_HEADER_SIZE, "header fits");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "futex words are 32-bit");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared");
_Static_assert((FR_RING_MIN_CAPACITY & (FR_RING_MIN_CAPACITY - 1)) == 0, "power of two");

struct fr_ring {
    uint8_t *map;
    size_t map_size;
    struct fr_ring_header *hdr;
    uint8_t *data;
    /* copied from the header once, after validation; never re-read from shared memory */
    uint64_t cap, mask, max_message, chunk_limit;
    int contract;
    int detached;
    int64_t liveness_ns, spin_ns;
    /* producers' last view of hdr->free; threads of one process may share a handle */
    _Atomic uint64_t free_cache;
    /* consumer state (one consumer at a time) */
    uint64_t tail_cache;
    int stalled;
    uint64_t stall_pos;
    int64_t stall_since;
    int64_t checked_at; /* when the stalled writer was last checked (pid, zero-scan) */
    uint64_t scan_end; /* where the last zero-scan of a stalled span stopped, 0 = none yet */
    int peek_valid;
    uint64_t peek_head, peek_end, peek_n, peek_key_bytes, peek_value_bytes;
    uint64_t error_pos;
    /* buffers of fr_ring_pop_registered */
    char *pop_out;
    uint64_t pop_cap;
    uint64_t *pop_info;
};

static struct fr_ring detached_handle = {.detached = 1};

/* ------------------------------------------------------------------ small functions */

static inline uint64_t align8(uint64_t x) { return (x + 7u) & ~(uint64_t)7u; }

static inline _Atomic uint64_t *word_at(const fr_ring *h, uint64_t pos)
{
    return (_Atomic uint64_t *)(void *)(h->data + (pos & h->mask));
}

static inline uint64_t make_word(uint32_t length, uint32_t type)
{
    return (uint64_t)length | ((uint64_t)type << 32);
}

static inline int32_t word_length(uint64_t w) { return (int32_t)(uint32_t)w; }
static inline uint32_t word_type(uint64_t w) { return (uint32_t)(w >> 32); }

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static _Atomic uint32_t cached_pid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_pid(void) { atomic_store_explicit(&cached_pid, 0, memory_order_relaxed); }
static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_pid); }

/* getpid() is a system call; the marker needs it on every claim, so keep it (reset on fork). */
static uint32_t self_pid(void)
{
    uint32_t p = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    if (p == 0) {
        pthread_once(&atfork_once, register_atfork);
        p = (uint32_t)getpid();
        atomic_store_explicit(&cached_pid, p, memory_order_relaxed);
    }
    return p;
}

/* True unless the process is known to be gone (no such pid, or a zombie). */
static int pid_alive(uint32_t pid)
{
    if (pid == 0 || pid > (uint32_t)INT_MAX)
        return 0;
    if (pid == self_pid())
        return 1;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return 0;
    /* a killed child stays a zombie until its parent reaps it; it will never write again */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : 1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 1;
    buf[n] = 0;
    char *paren = strrchr(buf, ')');
    if (!paren || paren[1] != ' ')
        return 1;
    return !(paren[2] == 'Z' || paren[2] == 'X');
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns, int *interrupted)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
        ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
        tsp = &ts;
    }
    /* not FUTEX_PRIVATE: the word may live in memory shared with other processes */
    long rc = syscall(SYS_futex, (uint32_t *)(void *)addr, FUTEX_WAIT, expected, tsp, NULL, 0);
    if (rc != 0 && errno == EINTR)
        *interrupted = 1;
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)(void *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Wakes the sleepers on `seq` if the count of sleepers says there are any. The caller made its
 * change with a seq_cst store, so either it sees the sleeper count or the sleeper sees the
 * change (the sleeper increments the count before re-checking). */
static inline void wake_if_waiting(_Atomic uint32_t *seq, _Atomic uint32_t *waiters)
{
    if (atomic_load_explicit(waiters, memory_order_seq_cst) != 0) {
        atomic_fetch_add_explicit(seq, 1, memory_order_seq_cst);
        futex_wake_all(seq);
    }
}

typedef struct {
    int64_t start, deadline, timeout_ns;
    int interrupted;
} waiter;

/* The clock is read only once a wait begins: most calls never wait. */
static inline void waiter_init(waiter *w, int64_t timeout_ns)
{
    w->timeout_ns = timeout_ns;
    w->interrupted = 0;
    w->start = 0;
    w->deadline = 0;
}

/* Time left before the deadline: -1 = forever, 0 = expired. Starts the clock on first use. */
static inline int64_t waiter_left(waiter *w, int64_t now)
{
    if (w->timeout_ns == 0)
        return 0;
    if (w->start == 0) {
        w->start = now;
        w->deadline = now + (w->timeout_ns > 0 ? w->timeout_ns : 0);
    }
    if (w->timeout_ns < 0)
        return -1;
    if (now >= w->deadline)
        return 0;
    return w->deadline - now;
}

/* One step of the wait before sleeping; 0 once the spin time is over. The other side usually
 * answers within microseconds, so the first part busy-waits; after that each step yields the
 * CPU, which matters when there are more runnable threads than cores (the thread we wait for
 * may need this core). Sleeping on the futex costs a system call on both sides and a wake-up
 * latency of tens of microseconds, hence the spin. */
static inline int spin_step(const fr_ring *h, const waiter *w, int64_t now)
{
    int64_t waited = now - w->start;
    if (waited >= h->spin_ns)
        return 0;
    if (waited < h->spin_ns / 8) {
        for (int i = 0; i < 64; i++)
            cpu_relax();
    } else {
        sched_yield();
    }
    return 1;
}

/* ------------------------------------------------------------------ message sources */

typedef struct {
    const int64_t *ko, *vo;
    const uint8_t *kd, *kv, *vd, *vv;
} source;

static inline int src_has_key(const source *s, uint64_t i) { return s->ko && (!s->kv || s->kv[i]); }
static inline int src_value_null(const source *s, uint64_t i) { return s->vv && !s->vv[i]; }

static inline uint64_t src_key_len(const source *s, uint64_t i)
{
    return src_has_key(s, i) ? (uint64_t)(s->ko[i + 1] - s->ko[i]) : 0;
}

static inline uint64_t src_value_len(const source *s, uint64_t i)
{
    return src_value_null(s, i) ? 0 : (uint64_t)(s->vo[i + 1] - s->vo[i]);
}

/* Length field of message i's record: header + optional key prefix and key + value. */
static inline uint64_t src_record_len(const source *s, uint64_t i)
{
    return 8 + (src_has_key(s, i) ? 4 + src_key_len(s, i) : 0) + src_value_len(s, i);
}

/* Checks every message before any goes in, so a batch never fails halfway on size. */
static int src_check(const fr_ring *h, const source *s, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (s->ko && s->ko[i + 1] < s->ko[i])
            return FR_RING_INVALID;
        if (s->vo[i + 1] < s->vo[i])
            return FR_RING_INVALID;
        if (src_key_len(s, i) + src_value_len(s, i) > h->max_message)
            return FR_RING_TOO_BIG;
    }
    return FR_RING_OK;
}

/* ------------------------------------------------------------------ producers */

/* How many messages from i fit in one span starting at position t with `avail` free bytes;
 * *span_out receives the span's bytes (records plus at most one padding record). */
static uint64_t layout(const fr_ring *h, const source *s, uint64_t i, uint64_t n, uint64_t t,
                       uint64_t avail, uint64_t *span_out)
{
    uint64_t off = t & h->mask, span = 0, k = 0;
    int padded = 0;
    while (i + k < n) {
        uint64_t rec = align8(src_record_len(s, i + k)), pad = 0;
        if (off + rec > h->cap) {
            if (padded)
                break;
            pad = h->cap - off;
        }
        if (span + pad + rec > avail)
            break;
        if (k > 0 && span + pad + rec > h->chunk_limit)
            break;
        span += pad + rec;
        padded |= pad != 0;
        off = (off + pad + rec) & h->mask;
        k++;
    }
    *span_out = span;
    return k;
}

/* Sleeps until hdr->free moves past `seen_free`, the ring closes, or the time runs out (spinning
 * first). Returns 0 once the timeout has expired. */
static int wait_for_space(fr_ring *h, waiter *w, uint64_t seen_free)
{
    struct fr_ring_header *hdr = h->hdr;
    int64_t now = now_ns();
    int64_t left = waiter_left(w, now);
    if (left == 0)
        return 0;
    if (spin_step(h, w, now))
        return 1;
    atomic_fetch_add_explicit(&hdr->space_waiters, 1, memory_order_seq_cst);
    uint32_t seq = atomic_load_explicit(&hdr->space_seq, memory_order_seq_cst);
    if (atomic_load_explicit(&hdr->free, memory_order_seq_cst) == seen_free &&
        !atomic_load_explicit(&hdr->closed, memory_order_seq_cst))
        futex_wait(&hdr->space_seq, seq, left, &w->interrupted);
    atomic_fetch_sub_explicit(&hdr->space_waiters, 1, memory_order_relaxed);
    return 1;
}

/* Claims a span for messages i.. (as many as fit now), waiting for room as `w` allows.
 * Returns the number claimed (> 0) with *t_out / *span_out, or a status < 0. The span's first
 * header holds the "being written" marker on return, unless `marker` is 0 (crash tests). */
static int64_t claim(fr_ring *h, const source *s, uint64_t i, uint64_t n, waiter *w, int mpsc,
                     int marker, uint64_t *t_out, uint64_t *span_out)
{
    struct fr_ring_header *hdr = h->hdr;
    /* acquire: an spsc producer may follow one in another process that died */
    uint64_t t = atomic_load_explicit(&hdr->tail, memory_order_acquire);
    for (;;) {
        if (atomic_load_explicit(&hdr->closed, memory_order_acquire))
            return FR_RING_CLOSED;
        uint64_t fr = atomic_load_explicit(&h->free_cache, memory_order_acquire);
        uint64_t used = t - fr;
        uint64_t span = 0;
        uint64_t k = used <= h->cap ? layout(h, s, i, n, t, h->cap - used, &span) : 0;
        if (k == 0) {
            /* acquire: the consumer zeroed the space it hands back before storing `free` */
            uint64_t fresh = atomic_load_explicit(&hdr->free, memory_order_acquire);
            if (fresh != fr) {
                atomic_store_explicit(&h->free_cache, fresh, memory_order_release);
                t = atomic_load_explicit(&hdr->tail, memory_order_relaxed);
                continue;
            }
            if (!wait_for_space(h, w, fresh))
                return FR_RING_FULL;
            if (w->interrupted)
                return FR_RING_INTERRUPTED;
            t = atomic_load_explicit(&hdr->tail, memory_order_relaxed);
            continue;
        }
        uint64_t mark = make_word((uint32_t)(-(int32_t)span), self_pid());
        if (mpsc) {
            /* the one compare-and-swap of this span: on success [t, t+span) is ours */
            if (!atomic_compare_exchange_weak_explicit(&hdr->tail, &t, t + span,
                                                       memory_order_relaxed, memory_order_relaxed))
                continue;
            if (marker) {
                atomic_store_explicit(word_at(h, t), mark, memory_order_relaxed);
                /* the marker reaches memory before any byte of the body (a crash leaves it) */
                atomic_thread_fence(memory_order_release);
            }
        } else {
            atomic_store_explicit(word_at(h, t), mark, memory_order_relaxed);
            /* release: the consumer that sees the new tail sees the marker */
            atomic_store_explicit(&hdr->tail, t + span, memory_order_release);
        }
        *t_out = t;
        *span_out = span;
        return (int64_t)k;
    }
}

/* Writes records for messages i..i+k-1 into the span at t, then commits the span by storing
 * its first header last. */
static void write_span(fr_ring *h, const source *s, uint64_t i, uint64_t k, uint64_t t)
{
    uint64_t pos = t, first_word = 0;
    int first = 1;
    for (uint64_t j = i; j < i + k; j++) {
        uint64_t len = src_record_len(s, j), rec = align8(len);
        uint64_t off = pos & h->mask;
        if (off + rec > h->cap) {
            uint64_t pad = h->cap - off;
            uint64_t w = make_word((uint32_t)pad, KIND_PAD);
            if (first)
                first_word = w, first = 0;
            else
                atomic_store_explicit(word_at(h, pos), w, memory_order_relaxed);
            pos += pad;
            off = 0;
        }
        uint8_t *p = h->data + off + 8;
        uint32_t type = KIND_MSG;
        if (src_has_key(s, j)) {
            uint32_t kl = (uint32_t)src_key_len(s, j);
            memcpy(p, &kl, 4);
            if (kl)
                memcpy(p + 4, s->kd + s->ko[j], kl);
            p += 4 + kl;
            type |= FLAG_KEY;
        }
        if (src_value_null(s, j))
            type |= FLAG_VALUE_NULL;
        else if (s->vo[j + 1] > s->vo[j])
            memcpy(p, s->vd + s->vo[j], (size_t)(s->vo[j + 1] - s->vo[j]));
        uint64_t w = make_word((uint32_t)len, type);
        if (first)
            first_word = w, first = 0;
        else
            atomic_store_explicit(word_at(h, pos), w, memory_order_relaxed);
        pos += rec;
    }
    /* publishes the whole span: every record and header above happens-before this store
     * (seq_cst so the check of sleeping consumers below cannot move before it) */
    atomic_store_explicit(word_at(h, t), first_word, memory_order_seq_cst);
}

static int64_t push_batch(fr_ring *h, const source *s, uint64_t n, int64_t timeout_ns, int mpsc)
{
    if (h->detached)
        return FR_RING_DETACHED;
    if (h->contract != (mpsc ? FR_RING_MPSC : FR_RING_SPSC))
        return FR_RING_INVALID;
    int rc = src_check(h, s, n);
    if (rc != FR_RING_OK)
        return rc;
    struct fr_ring_header *hdr = h->hdr;
    waiter w;
    waiter_init(&w, timeout_ns);
    uint64_t i = 0;
    while (i < n) {
        uint64_t t, span;
        int64_t k = claim(h, s, i, n, &w, mpsc, 1, &t, &span);
        if (k < 0)
            return i > 0 ? (int64_t)i : k;
        write_span(h, s, i, (uint64_t)k, t);
        atomic_fetch_add_explicit(&hdr->pushed, (uint64_t)k, memory_order_relaxed);
        wake_if_waiting(&hdr->data_seq, &hdr->data_waiters);
        i += (uint64_t)k;
    }
    return (int64_t)n;
}

static int push_one(fr_ring *h, const char *value, uint64_t len, int64_t timeout_ns, int mpsc)
{
    int64_t offsets[2] = {0, (int64_t)len};
    source s = {.ko = NULL, .vo = offsets, .vd = (const uint8_t *)value};
    int64_t r = push_batch(h, &s, 1, timeout_ns, mpsc);
    return r == 1 ? FR_RING_OK : (int)r;
}

int fr_ring_push_spsc(fr_ring *h, const char *value, uint64_t len, int64_t timeout_ns)
{
    return push_one(h, value, len, timeout_ns, 0);
}

int fr_ring_push_mpsc(fr_ring *h, const char *value, uint64_t len, int64_t timeout_ns)
{
    return push_one(h, value, len, timeout_ns, 1);
}

int64_t fr_ring_push_batch_spsc(fr_ring *h, const int64_t *key_offsets, const uint8_t *key_data,
                                const uint8_t *key_valid, const int64_t *value_offsets,
                                const uint8_t *value_data, const uint8_t *value_valid, uint64_t n,
                                int64_t timeout_ns)
{
    source s = {key_offsets, value_offsets, key_data, key_valid, value_data, value_valid};
    return push_batch(h, &s, n, timeout_ns, 0);
}

int64_t fr_ring_push_batch_mpsc(fr_ring *h, const int64_t *key_offsets, const uint8_t *key_data,
                                const uint8_t *key_valid, const int64_t *value_offsets,
                                const uint8_t *value_data, const uint8_t *value_valid, uint64_t n,
                                int64_t timeout_ns)
{
    source s = {key_offsets, value_offsets, key_data, key_valid, value_data, value_valid};
    return push_batch(h, &s, n, timeout_ns, 1);
}

/* ------------------------------------------------------------------ consumer */

enum { AT_RECORD, AT_EMPTY, AT_PENDING, AT_CORRUPT };

typedef struct {
    uint32_t kind, flags;
    uint64_t len, rec; /* length field; bytes to the next record */
    uint64_t key_len, value_len;
} record;

static int corrupt(fr_ring *h, uint64_t pos)
{
    h->error_pos = pos;
    return AT_CORRUPT;
}

/* Checks a committed header word at `pos` against everything a writer guarantees. */
static int check_record(fr_ring *h, uint64_t pos, uint64_t w, record *r)
{
    int32_t len = word_length(w);
    uint32_t type = word_type(w);
    uint64_t off = pos & h->mask;
    r->kind = type & KIND_MASK;
    r->flags = type & ~KIND_MASK;
    r->len = (uint64_t)len;
    r->rec = align8(r->len);
    if (len < 8 || off + r->rec > h->cap)
        return corrupt(h, pos);
    if (pos + r->rec > h->tail_cache) {
        h->tail_cache = atomic_load_explicit(&h->hdr->tail, memory_order_acquire);
        if (pos + r->rec > h->tail_cache || h->tail_cache - pos > h->cap)
            return corrupt(h, pos);
    }
    if (r->kind == KIND_PAD) {
        if (r->flags || off + r->len != h->cap)
            return corrupt(h, pos);
        r->key_len = r->value_len = 0;
        return AT_RECORD;
    }
    if (r->kind != KIND_MSG || (r->flags & ~FLAGS_KNOWN))
        return corrupt(h, pos);
    uint64_t payload = r->len - 8, prefix = 0;
    r->key_len = 0;
    if (r->flags & FLAG_KEY) {
        if (payload < 4)
            return corrupt(h, pos);
        uint32_t kl;
        memcpy(&kl, h->data + off + 8, 4);
        if (kl > payload - 4)
            return corrupt(h, pos);
        r->key_len = kl;
        prefix = 4;
    }
    r->value_len = payload - prefix - r->key_len;
    if (r->key_len + r->value_len > h->max_message)
        return corrupt(h, pos);
    if ((r->flags & FLAG_VALUE_NULL) && r->value_len)
        return corrupt(h, pos);
    return AT_RECORD;
}

/* What the consumer finds at `pos`: a committed record, nothing (pos == tail), a span still
 * being written (or whose writer died), or corruption. */
static int inspect(fr_ring *h, uint64_t pos, uint64_t *w_out, record *r)
{
    if (pos >= h->tail_cache) {
        h->tail_cache = atomic_load_explicit(&h->hdr->tail, memory_order_acquire);
        if (pos == h->tail_cache)
            return AT_EMPTY;
        if (pos > h->tail_cache || h->tail_cache - pos > h->cap)
            return corrupt(h, pos);
    }
    /* acquire: pairs with the producer's commit store; the record body is visible after it */
    uint64_t w = atomic_load_explicit(word_at(h, pos), memory_order_acquire);
    *w_out = w;
    if (word_length(w) <= 0)
        return AT_PENDING;
    return check_record(h, pos, w, r);
}

static void zero_range(fr_ring *h, uint64_t from, uint64_t to)
{
    uint64_t n = to - from, off = from & h->mask;
    if (n > h->cap)
        n = h->cap;
    uint64_t first = n < h->cap - off ? n : h->cap - off;
    memset(h->data + off, 0, (size_t)first);
    if (n > first)
        memset(h->data, 0, (size_t)(n - first));
}

/* Hands [old_head, new_head) back to the producers after `msgs` messages were consumed. */
static void release(fr_ring *h, uint64_t old_head, uint64_t new_head, uint64_t msgs)
{
    struct fr_ring_header *hdr = h->hdr;
    if (msgs)
        atomic_store_explicit(&hdr->popped,
                              atomic_load_explicit(&hdr->popped, memory_order_relaxed) + msgs,
                              memory_order_relaxed);
    /* release: the records are consumed; a consumer that dies after this store does not
     * read them again */
    atomic_store_explicit(&hdr->head, new_head, memory_order_release);
    /* under mpsc an unwritten header must read 0, so the space goes back zeroed */
    if (h->contract == FR_RING_MPSC)
        zero_range(h, old_head, new_head);
    /* seq_cst: publishes the space (and zeroes) before the check of sleeping producers */
    atomic_store_explicit(&hdr->free, new_head, memory_order_seq_cst);
    wake_if_waiting(&hdr->space_seq, &hdr->space_waiters);
}

/* Loads head for a consumer operation and finishes the work of a consumer that died between
 * storing head and storing free. Returns a status; *head_out receives head. */
static int consumer_begin(fr_ring *h, uint64_t *head_out)
{
    struct fr_ring_header *hdr = h->hdr;
    h->peek_valid = 0;
    uint64_t head = atomic_load_explicit(&hdr->head, memory_order_acquire);
    uint64_t fr = atomic_load_explicit(&hdr->free, memory_order_acquire);
    if (fr != head) {
        if (head - fr > h->cap) {
            h->error_pos = head;
            return FR_RING_CORRUPT;
        }
        release(h, fr, head, 0);
    }
    /* the cached tail saves a load of the producers' line; inspect() reloads it when it runs
     * out. A head further than a lap behind it means corruption (or a stale cache: reload). */
    if (h->tail_cache < head)
        h->tail_cache = head;
    if (h->tail_cache - head > h->cap) {
        h->tail_cache = atomic_load_explicit(&hdr->tail, memory_order_acquire);
        if (h->tail_cache < head || h->tail_cache - head > h->cap) {
            h->error_pos = head;
            return FR_RING_CORRUPT;
        }
    }
    *head_out = head;
    return FR_RING_OK;
}

/* Decides whether the span at `head`, pending since the consumer first saw it, belongs to a dead
 * writer and should be skipped. Returns 1 with *skip_out = bytes to skip, 0 to keep waiting, or
 * FR_RING_CORRUPT. */
static int check_stall(fr_ring *h, uint64_t head, uint64_t w, uint64_t *skip_out)
{
    int64_t now = now_ns();
    if (!h->stalled || h->stall_pos != head) {
        h->stalled = 1;
        h->stall_pos = head;
        h->stall_since = now;
        h->checked_at = 0;
        h->scan_end = 0;
        return 0;
    }
    if (now - h->stall_since < h->liveness_ns)
        return 0;
    int32_t len = word_length(w);
    uint64_t skip;
    if (len < 0) {
        /* a live writer is only slow (or stopped); skipping it would let it write over data */
        if (now - h->checked_at < h->liveness_ns / 4 + 1)
            return 0;
        h->checked_at = now;
        if (pid_alive(word_type(w)))
            return 0;
        skip = (uint64_t)(-(int64_t)len);
        h->tail_cache = atomic_load_explicit(&h->hdr->tail, memory_order_acquire);
        if (skip < 8 || (skip & 7u) || h->tail_cache - head < skip || h->tail_cache - head > h->cap) {
            h->error_pos = head;
            return FR_RING_CORRUPT;
        }
    } else if (h->contract == FR_RING_SPSC) {
        /* an spsc producer writes its marker before it publishes the tail */
        h->error_pos = head;
        return FR_RING_CORRUPT;
    } else {
        /* the writer died between its claim and its marker, having written nothing: its span
         * is zero up to the next writer's first header (or the tail) */
        h->tail_cache = atomic_load_explicit(&h->hdr->tail, memory_order_acquire);
        uint64_t end = h->tail_cache;
        if (end - head > h->cap) {
            h->error_pos = head;
            return FR_RING_CORRUPT;
        }
        uint64_t p = head + 8;
        while (p < end && atomic_load_explicit(word_at(h, p), memory_order_acquire) == 0)
            p += 8;
        /* A live producer preempted between its claim and its marker also reads as zero: act
         * only when a second scan, a while later, stops at the same place (by then a live
         * producer has written its marker, which moves the stop). */
        if (h->scan_end != p || now - h->checked_at < h->liveness_ns / 4 + 1) {
            if (h->scan_end != p)
                h->checked_at = now;
            h->scan_end = p;
            return 0;
        }
        skip = p - head;
    }
    atomic_fetch_add_explicit(&h->hdr->skipped, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->hdr->skipped_bytes, skip, memory_order_relaxed);
    h->stalled = 0;
    *skip_out = skip;
    return 1;
}

/* Sleeps until the header at `head` changes, the tail moves (when the ring looked empty), the
 * ring closes, or the time runs out (spinning first). Returns 0 once the timeout expired. */
static int wait_for_data(fr_ring *h, waiter *w, uint64_t head, uint64_t seen_word, int pending)
{
    struct fr_ring_header *hdr = h->hdr;
    int64_t now = now_ns();
    int64_t left = waiter_left(w, now);
    if (left == 0)
        return 0;
    if (spin_step(h, w, now))
        return 1;
    if (pending) {
        /* wake up now and then to apply the liveness rule to a writer that may have died */
        int64_t slice = h->liveness_ns / 4 + 1000000;
        if (slice > STALL_SLICE_MAX_NS)
            slice = STALL_SLICE_MAX_NS;
        if (left < 0 || left > slice)
            left = slice;
    }
    atomic_fetch_add_explicit(&hdr->data_waiters, 1, memory_order_seq_cst);
    uint32_t seq = atomic_load_explicit(&hdr->data_seq, memory_order_seq_cst);
    /* a pending span ignores `closed`: its writer still commits (or the liveness rule applies) */
    int same = atomic_load_explicit(word_at(h, head), memory_order_seq_cst) == seen_word &&
               (pending || (atomic_load_explicit(&hdr->tail, memory_order_seq_cst) == head &&
                            !atomic_load_explicit(&hdr->closed, memory_order_seq_cst)));
    if (same)
        futex_wait(&hdr->data_seq, seq, left, &w->interrupted);
    atomic_fetch_sub_explicit(&hdr->data_waiters, 1, memory_order_relaxed);
    return 1;
}

/* The shared wait loop of pop and peek_batch: called when nothing is readable at `pos` (after
 * `head`, past padding only). Returns 1 to look again (head may have moved), or a final status.
 * `*skipped` is set when a dead writer's span was skipped. */
static int consumer_wait(fr_ring *h, waiter *w, uint64_t *head, uint64_t pos, int state,
                         uint64_t word, int *skipped)
{
    if (state == AT_CORRUPT)
        return FR_RING_CORRUPT;
    if (state == AT_PENDING) {
        uint64_t skip;
        int rc = check_stall(h, pos, word, &skip);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            release(h, *head, pos + skip, 0);
            *head = pos + skip;
            *skipped = 1;
            return 1;
        }
    } else {
        h->stalled = 0;
    }
    if (pos != *head) { /* padding only: consume it now */
        release(h, *head, pos, 0);
        *head = pos;
    }
    if (state == AT_EMPTY && atomic_load_explicit(&h->hdr->closed, memory_order_acquire)) {
        h->tail_cache = atomic_load_explicit(&h->hdr->tail, memory_order_acquire);
        if (h->tail_cache == pos)
            return FR_RING_CLOSED;
        return 1;
    }
    if (state == AT_EMPTY)
        word = atomic_load_explicit(word_at(h, pos), memory_order_relaxed);
    if (!wait_for_data(h, w, pos, word, state == AT_PENDING))
        return FR_RING_EMPTY;
    if (w->interrupted)
        return FR_RING_INTERRUPTED;
    return 1;
}

int64_t fr_ring_pop(fr_ring *h, char *out, uint64_t out_cap, int64_t timeout_ns, uint64_t *info)
{
    if (h->detached)
        return FR_RING_DETACHED;
    uint64_t head;
    int rc = consumer_begin(h, &head);
    if (rc != FR_RING_OK)
        return rc;
    waiter w;
    waiter_init(&w, timeout_ns);
    int skipped = 0;
    for (;;) {
        uint64_t pos = head, word = 0;
        record r;
        int st;
        while ((st = inspect(h, pos, &word, &r)) == AT_RECORD && r.kind == KIND_PAD)
            pos += r.rec;
        if (st == AT_RECORD) {
            if (r.value_len > out_cap) {
                if (pos != head)
                    release(h, head, pos, 0);
                info[0] = r.value_len;
                return FR_RING_SMALL_BUFFER;
            }
            const uint8_t *p = h->data + (pos & h->mask) + 8;
            if (r.flags & FLAG_KEY)
                p += 4 + r.key_len;
            memcpy(out, p, (size_t)r.value_len);
            h->stalled = 0;
            release(h, head, pos + r.rec, 1);
            if (!skipped && !(r.flags & FLAG_VALUE_NULL))
                return (int64_t)r.value_len;
            info[0] = r.value_len;
            info[1] = (skipped ? FR_RING_SKIPPED : 0) | (r.flags & FLAG_VALUE_NULL ? FR_RING_NULL_VALUE : 0);
            return FR_RING_NOTED;
        }
        rc = consumer_wait(h, &w, &head, pos, st, word, &skipped);
        if (rc != 1)
            return rc;
    }
}

void fr_ring_set_pop_buffers(fr_ring *h, char *out, uint64_t out_cap, uint64_t *info)
{
    if (h->detached)
        return;
    h->pop_out = out;
    h->pop_cap = out_cap;
    h->pop_info = info;
}

int64_t fr_ring_pop_registered(fr_ring *h, int64_t timeout_ns)
{
    if (h->detached)
        return FR_RING_DETACHED;
    if (!h->pop_info)
        return FR_RING_INVALID;
    return fr_ring_pop(h, h->pop_out, h->pop_cap, timeout_ns, h->pop_info);
}

int fr_ring_peek_batch(fr_ring *h, uint64_t max_messages, uint64_t max_bytes, int64_t timeout_ns,
                       uint64_t *info)
{
    if (h->detached)
        return FR_RING_DETACHED;
    if (max_messages == 0)
        return FR_RING_INVALID;
    uint64_t head;
    int rc = consumer_begin(h, &head);
    if (rc != FR_RING_OK)
        return rc;
    waiter w;
    waiter_init(&w, timeout_ns);
    int skipped = 0;
    for (;;) {
        uint64_t pos = head, word = 0, n = 0, kb = 0, vb = 0, kn = 0, vn = 0, last_end = head;
        record r;
        int st;
        while (n < max_messages) {
            st = inspect(h, pos, &word, &r);
            if (st != AT_RECORD)
                break;
            if (r.kind == KIND_PAD) {
                pos += r.rec;
                continue;
            }
            if (n > 0 && kb + vb + r.key_len + r.value_len > max_bytes)
                break;
            kb += r.key_len;
            vb += r.value_len;
            kn += !(r.flags & FLAG_KEY);
            vn += (r.flags & FLAG_VALUE_NULL) != 0;
            n++;
            pos += r.rec;
            last_end = pos;
        }
        if (n > 0) {
            h->stalled = 0;
            h->peek_valid = 1;
            h->peek_head = head;
            h->peek_end = last_end;
            h->peek_n = n;
            h->peek_key_bytes = kb;
            h->peek_value_bytes = vb;
            info[FR_PEEK_N] = n;
            info[FR_PEEK_KEY_BYTES] = kb;
            info[FR_PEEK_VALUE_BYTES] = vb;
            info[FR_PEEK_KEY_NULLS] = kn;
            info[FR_PEEK_VALUE_NULLS] = vn;
            return skipped ? FR_RING_SKIPPED : FR_RING_OK;
        }
        rc = consumer_wait(h, &w, &head, pos, st, word, &skipped);
        if (rc != 1)
            return rc;
    }
}

int fr_ring_take_batch(fr_ring *h, int64_t *key_offsets, uint8_t *key_data, uint8_t *key_valid,
                       int64_t *value_offsets, uint8_t *value_data, uint8_t *value_valid)
{
    if (h->detached)
        return FR_RING_DETACHED;
    if (!h->peek_valid)
        return FR_RING_INVALID;
    h->peek_valid = 0;
    uint64_t head = atomic_load_explicit(&h->hdr->head, memory_order_acquire);
    if (head != h->peek_head)
        return FR_RING_INVALID;
    uint64_t pos = head, kb = 0, vb = 0;
    key_offsets[0] = 0;
    value_offsets[0] = 0;
    for (uint64_t i = 0; i < h->peek_n;) {
        record r;
        uint64_t w = atomic_load_explicit(word_at(h, pos), memory_order_acquire);
        /* checked again: another process may have scribbled on the region since the peek */
        if (word_length(w) <= 0 || check_record(h, pos, w, &r) != AT_RECORD)
            return corrupt(h, pos), FR_RING_CORRUPT;
        if (r.kind == KIND_PAD) {
            pos += r.rec;
            continue;
        }
        if (kb + r.key_len > h->peek_key_bytes || vb + r.value_len > h->peek_value_bytes)
            return corrupt(h, pos), FR_RING_CORRUPT;
        const uint8_t *p = h->data + (pos & h->mask) + 8;
        if (r.flags & FLAG_KEY) {
            memcpy(key_data + kb, p + 4, (size_t)r.key_len);
            p += 4 + r.key_len;
            kb += r.key_len;
        }
        key_valid[i] = (r.flags & FLAG_KEY) != 0;
        key_offsets[i + 1] = (int64_t)kb;
        memcpy(value_data + vb, p, (size_t)r.value_len);
        vb += r.value_len;
        value_valid[i] = !(r.flags & FLAG_VALUE_NULL);
        value_offsets[i + 1] = (int64_t)vb;
        pos += r.rec;
        i++;
    }
    if (pos != h->peek_end || kb != h->peek_key_bytes || vb != h->peek_value_bytes)
        return corrupt(h, pos), FR_RING_CORRUPT;
    release(h, head, pos, h->peek_n);
    return FR_RING_OK;
}

/* ------------------------------------------------------------------ control */

void fr_ring_close(fr_ring *h)
{
    if (h->detached)
        return;
    struct fr_ring_header *hdr = h->hdr;
    atomic_store_explicit(&hdr->closed, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&hdr->data_seq, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&hdr->space_seq, 1, memory_order_seq_cst);
    futex_wake_all(&hdr->data_seq);
    futex_wake_all(&hdr->space_seq);
}

void fr_ring_stats(fr_ring *h, uint64_t *out)
{
    memset(out, 0, FR_STAT_N * sizeof *out);
    if (h->detached)
        return;
    struct fr_ring_header *hdr = h->hdr;
    uint64_t popped = atomic_load_explicit(&hdr->popped, memory_order_acquire);
    uint64_t pushed = atomic_load_explicit(&hdr->pushed, memory_order_acquire);
    uint64_t fr = atomic_load_explicit(&hdr->free, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&hdr->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&hdr->tail, memory_order_acquire);
    out[FR_STAT_CAPACITY] = h->cap;
    out[FR_STAT_BYTES_USED] = tail - fr <= h->cap ? tail - fr : h->cap;
    /* a commit counted by the producer just after the consumer took it reads as -1: clamp */
    out[FR_STAT_COUNT] = pushed > popped ? pushed - popped : 0;
    out[FR_STAT_SKIPPED] = atomic_load_explicit(&hdr->skipped, memory_order_relaxed);
    out[FR_STAT_SKIPPED_BYTES] = atomic_load_explicit(&hdr->skipped_bytes, memory_order_relaxed);
    out[FR_STAT_CLOSED] = atomic_load_explicit(&hdr->closed, memory_order_acquire);
    out[FR_STAT_CONTRACT] = (uint64_t)h->contract;
    out[FR_STAT_MAX_MESSAGE] = h->max_message;
    out[FR_STAT_HEAD] = head;
    out[FR_STAT_TAIL] = tail;
}

uint64_t fr_ring_error_position(fr_ring *h) { return h->error_pos; }

void fr_ring_set_liveness(fr_ring *h, int64_t liveness_ns)
{
    if (!h->detached)
        h->liveness_ns = liveness_ns < 0 ? 0 : liveness_ns;
}

void fr_ring_set_spin(fr_ring *h, int64_t spin_ns)
{
    if (!h->detached)
        h->spin_ns = spin_ns < 0 ? 0 : spin_ns;
}

/* ------------------------------------------------------------------ opening */

int fr_ring_check_capacity(uint64_t capacity)
{
    if (capacity < FR_RING_MIN_CAPACITY || capacity > FR_RING_MAX_CAPACITY ||
        (capacity & (capacity - 1)) != 0)
        return FR_RING_INVALID;
    return FR_RING_OK;
}

static int valid_contract(int contract) { return contract == FR_RING_SPSC || contract == FR_RING_MPSC; }

static fr_ring *new_handle(uint8_t *map, size_t map_size)
{
    fr_ring *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    struct fr_ring_header *hdr = (struct fr_ring_header *)(void *)map;
    h->map = map;
    h->map_size = map_size;
    h->hdr = hdr;
    h->data = map + FR_RING_HEADER_SIZE;
    h->cap = hdr->capacity;
    h->mask = h->cap - 1;
    h->max_message = h->cap / FR_RING_MESSAGE_DIVISOR;
    h->chunk_limit = h->cap / 4;
    h->contract = (int)hdr->contract;
    h->liveness_ns = DEFAULT_LIVENESS_NS;
    h->spin_ns = DEFAULT_SPIN_NS;
    atomic_init(&h->free_cache, atomic_load_explicit(&hdr->free, memory_order_acquire));
    self_pid();
    return h;
}

static void init_header(uint8_t *map, uint64_t capacity, int contract)
{
    struct fr_ring_header *hdr = (struct fr_ring_header *)(void *)map;
    hdr->version = FR_RING_VERSION;
    hdr->header_size = FR_RING_HEADER_SIZE;
    hdr->capacity = capacity;
    hdr->contract = (uint32_t)contract;
    hdr->creator_pid = self_pid();
    /* release: an attacher that sees the magic sees every field above */
    atomic_store_explicit(&hdr->magic, MAGIC, memory_order_release);
}

static int finish_open(uint8_t *map, size_t size, fr_ring **out)
{
    fr_ring *h = new_handle(map, size);
    if (!h) {
        munmap(map, size);
        errno = ENOMEM;
        return FR_RING_SYSTEM;
    }
    *out = h;
    return FR_RING_OK;
}

int fr_ring_open_anonymous(uint64_t capacity, int contract, fr_ring **out)
{
    if (fr_ring_check_capacity(capacity) != FR_RING_OK || !valid_contract(contract))
        return FR_RING_INVALID;
    size_t size = (size_t)(FR_RING_HEADER_SIZE + capacity);
    /* shared, so a fork child that inherits the mapping shares the ring */
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return FR_RING_SYSTEM;
    init_header(map, capacity, contract);
    return finish_open(map, size, out);
}

int fr_ring_create(const char *name, uint64_t capacity, int contract, fr_ring **out)
{
    if (fr_ring_check_capacity(capacity) != FR_RING_OK || !valid_contract(contract))
        return FR_RING_INVALID;
    size_t size = (size_t)(FR_RING_HEADER_SIZE + capacity);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return FR_RING_SYSTEM;
    /* exactly 0600 whatever the umask: the owner must be able to read and write */
    if (fchmod(fd, 0600) != 0 || ftruncate(fd, (off_t)size) != 0) {
        int e = errno;
        close(fd);
        shm_unlink(name);
        errno = e;
        return FR_RING_SYSTEM;
    }
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        shm_unlink(name);
        errno = e;
        return FR_RING_SYSTEM;
    }
    init_header(map, capacity, contract);
    return finish_open(map, size, out);
}

int fr_ring_attach(const char *name, fr_ring **out, uint32_t *found_version)
{
    int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return FR_RING_SYSTEM;
    int64_t give_up = now_ns() + ATTACH_WAIT_NS;
    struct stat st;
    void *map = MAP_FAILED;
    size_t size = 0;
    int rc = FR_RING_NOT_A_RING;
    /* a ring being created has size 0 or no magic for a moment: wait a little for it */
    for (;;) {
        if (fstat(fd, &st) != 0) {
            rc = FR_RING_SYSTEM;
            break;
        }
        if ((uint64_t)st.st_size >= FR_RING_HEADER_SIZE) {
            size = (size_t)st.st_size;
            map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (map == MAP_FAILED) {
                rc = FR_RING_SYSTEM;
                break;
            }
            struct fr_ring_header *hdr = map;
            uint64_t magic = atomic_load_explicit(&hdr->magic, memory_order_acquire);
            if (magic != 0 && magic != MAGIC)
                break; /* someone else's memory: no point waiting */
            if (magic == MAGIC) {
                if (hdr->version != FR_RING_VERSION) {
                    if (found_version)
                        *found_version = hdr->version;
                    rc = FR_RING_BAD_VERSION;
                } else if (hdr->header_size != FR_RING_HEADER_SIZE ||
                           fr_ring_check_capacity(hdr->capacity) != FR_RING_OK ||
                           (uint64_t)size != FR_RING_HEADER_SIZE + hdr->capacity ||
                           !valid_contract((int)hdr->contract)) {
                    rc = FR_RING_NOT_A_RING;
                } else {
                    rc = FR_RING_OK;
                }
                break;
            }
            munmap(map, size);
            map = MAP_FAILED;
        }
        if (now_ns() > give_up)
            break;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    int e = errno;
    close(fd);
    if (rc != FR_RING_OK) {
        if (map != MAP_FAILED)
            munmap(map, size);
        errno = e;
        return rc;
    }
    return finish_open(map, size, out);
}

int fr_ring_unlink(const char *name) { return shm_unlink(name) == 0 ? FR_RING_OK : FR_RING_SYSTEM; }

void fr_ring_free(fr_ring *h)
{
    if (!h || h->detached)
        return;
    munmap(h->map, h->map_size);
    free(h);
}

fr_ring *fr_ring_detached(void) { return &detached_handle; }

/* ------------------------------------------------------------------ crash-test hooks */

int fr_ring_test_stall_producer(fr_ring *h, uint64_t len, int stage)
{
    if (h->detached)
        return FR_RING_DETACHED;
    if (len > h->max_message || (stage == 0 && h->contract != FR_RING_MPSC))
        return FR_RING_INVALID;
    int64_t offsets[2] = {0, (int64_t)len};
    source s = {.ko = NULL, .vo = offsets, .vd = NULL};
    waiter w;
    waiter_init(&w, 0);
    uint64_t t, span;
    int64_t k = claim(h, &s, 0, 1, &w, h->contract == FR_RING_MPSC, stage != 0, &t, &span);
    if (k < 0)
        return (int)k;
    if (stage != 0) {
        uint64_t off = t & h->mask, rec = align8(8 + len);
        if (off + rec > h->cap)
            off = 0;
        memset(h->data + off + 8, 0xAB, (size_t)(len / 2));
    }
    return FR_RING_OK;
}

int fr_ring_test_stall_consumer(fr_ring *h, int stage)
{
    if (h->detached)
        return FR_RING_DETACHED;
    uint64_t head, word;
    int rc = consumer_begin(h, &head);
    if (rc != FR_RING_OK)
        return rc;
    record r;
    uint64_t pos = head;
    int st;
    while ((st = inspect(h, pos, &word, &r)) == AT_RECORD && r.kind == KIND_PAD)
        pos += r.rec;
    if (st != AT_RECORD)
        return FR_RING_EMPTY;
    if (stage == 1) { /* what release() does first, in its order */
        atomic_fetch_add_explicit(&h->hdr->popped, 1, memory_order_relaxed);
        atomic_store_explicit(&h->hdr->head, pos + r.rec, memory_order_release);
        if (h->contract == FR_RING_MPSC)
            zero_range(h, head, head + (pos + r.rec - head) / 2);
    }
    return FR_RING_OK;
}

void fr_ring_test_poke(fr_ring *h, uint64_t pos, uint64_t word)
{
    if (!h->detached)
        atomic_store_explicit(word_at(h, pos & ~(uint64_t)7u), word, memory_order_seq_cst);
}
