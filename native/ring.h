/*
 * ring.h: a byte ring for batches of variable-length messages, shared between threads or
 * processes through one flat memory region.
 *
 * Contracts (the function names say which one a call follows):
 *   _spsc  single producer, single consumer: the producer publishes with plain stores.
 *   _mpsc  many producers, single consumer: producers claim space with one compare-and-swap
 *          per batch (not per message). Consumer functions are the same for both contracts.
 * Mixing the two on one ring, or running two consumers at once, breaks the ring; the caller
 * keeps the contract (the ring records which one it was created for).
 *
 * Region layout (one mapping: a 1024-byte header, then `capacity` data bytes):
 *
 *   offset 0    +----------------------------------------------------------------+
 *               | line 0 (read-mostly): magic, version, header size, capacity,   |
 *               |         contract, creator pid, closed flag                     |
 *   128         +----------------------------------------------------------------+
 *               | line 1 (producers): tail  = end of the last claimed byte       |
 *               |                     pushed = messages committed                |
 *   256         +----------------------------------------------------------------+
 *               | line 2 (consumer):  head  = end of the last consumed byte      |
 *               |                     free  = end of the last zeroed byte        |
 *               |                     popped, skipped records, skipped bytes     |
 *   384         +----------------------------------------------------------------+
 *               | line 3: data futex word + count of consumers asleep on it      |
 *   512         +----------------------------------------------------------------+
 *               | line 4: space futex word + count of producers asleep on it     |
 *   640 .. 1024 +----------------------------------------------------------------+
 *               | reserved (zero)                                                |
 *   1024        +================================================================+
 *               | data: capacity bytes (a power of two), records 8-byte aligned  |
 *               |                                                                |
 *               |  ... | hdr | payload  pad | hdr | payload | hdr PAD ......... | |
 *               +================================================================+
 *
 * Positions (tail, head, free) are free-running 64-bit byte counts; a position's place in
 * the data area is `pos & (capacity - 1)`. Producers may write only in [tail, free+capacity).
 *
 * Record: an 8-byte header word, then the payload, then zero padding to 8 bytes.
 *
 *   header word (little end first):  int32 length | uint32 type
 *     length > 0   committed record; length = 8 + payload bytes (padding not counted)
 *     length < 0   claimed, being written: -length = bytes of the whole claimed span,
 *                  type = pid of the writing process (used to tell a dead writer)
 *     length == 0  not written yet
 *   type of a committed record: kind (low 8 bits: MSG or PAD) | flags (KEY, VALUE_NULL)
 *   MSG payload:  [uint32 key length, key bytes]  (only with flag KEY; no KEY = null key)
 *                 value bytes                      (none with flag VALUE_NULL = null value)
 *   PAD          fills the gap at the end of the data area so no record wraps.
 *
 * A producer claims a span for a run of messages (at most capacity/4 bytes of messages),
 * writes a "being written" marker as the span's first header, writes every record of the
 * span, and commits the span by storing the first header last (release). The consumer
 * acquires each header before reading the record.
 *
 * Under _mpsc the consumer zeroes what it consumed (so an unwritten header reads 0) before
 * handing the space back through `free`; under _spsc the producer publishes `tail` only after
 * the marker, so the consumer never reads a header that was not written.
 *
 * Crash safety. A consumer that meets a span still uncommitted after the liveness timeout skips
 * it and counts it once its writer's process is gone (the marker names it; a zombie counts as
 * gone). A span with no marker yet (mpsc: the writer stopped between claim and marker) is
 * skipped only when a second scan, a quarter of the timeout later, finds it unchanged. A
 * consumer that dies before storing `head` loses nothing: the next consumer reads the same
 * records; one that dies between `head` and `free` leaves the zeroing to the next consumer.
 */
#ifndef FASTROUTE_RING_H
#define FASTROUTE_RING_H

#include <stdint.h>

#define FR_RING_VERSION 1
#define FR_RING_HEADER_SIZE 1024
#define FR_RING_MIN_CAPACITY 4096
#define FR_RING_MAX_CAPACITY 4294967296ULL
/* A message (key + value bytes) may use at most capacity / FR_RING_MESSAGE_DIVISOR bytes. */
#define FR_RING_MESSAGE_DIVISOR 8

#define FR_RING_SPSC 1
#define FR_RING_MPSC 2

/* Status codes: >= 0 success, < 0 failure. */
#define FR_RING_OK 0
#define FR_RING_SKIPPED 1         /* success; records left by a dead producer were skipped */
#define FR_RING_NULL_VALUE 2      /* bit in fr_ring_pop's info[1]: the value is null */
#define FR_RING_FULL (-1)         /* no room before the timeout */
#define FR_RING_EMPTY (-2)        /* nothing to read before the timeout */
#define FR_RING_CLOSED (-3)       /* closed (and, for a consumer, drained) */
#define FR_RING_TOO_BIG (-4)      /* a message larger than capacity / 8 */
#define FR_RING_CORRUPT (-5)      /* a header or position that no writer produces */
#define FR_RING_SMALL_BUFFER (-6) /* the output buffer is too small; nothing was consumed */
#define FR_RING_DETACHED (-7)     /* the handle was detached */
#define FR_RING_INVALID (-8)      /* a bad argument (capacity, name, contract, sequence) */
#define FR_RING_SYSTEM (-9)       /* a system call failed; errno says why */
#define FR_RING_NOT_A_RING (-10)  /* the memory has no ring magic, or the wrong size */
#define FR_RING_BAD_VERSION (-11) /* a ring of another layout version */
#define FR_RING_INTERRUPTED (-12) /* a signal arrived while waiting; nothing happened */
#define FR_RING_NOTED (-13)       /* pop succeeded with something to note: see fr_ring_pop */

/* Indexes into the array filled by fr_ring_stats. */
#define FR_STAT_CAPACITY 0
#define FR_STAT_BYTES_USED 1
#define FR_STAT_COUNT 2
#define FR_STAT_SKIPPED 3
#define FR_STAT_SKIPPED_BYTES 4
#define FR_STAT_CLOSED 5
#define FR_STAT_CONTRACT 6
#define FR_STAT_MAX_MESSAGE 7
#define FR_STAT_HEAD 8
#define FR_STAT_TAIL 9
#define FR_STAT_N 10

/* Indexes into the info array filled by fr_ring_peek_batch. */
#define FR_PEEK_N 0
#define FR_PEEK_KEY_BYTES 1
#define FR_PEEK_VALUE_BYTES 2
#define FR_PEEK_KEY_NULLS 3
#define FR_PEEK_VALUE_NULLS 4
#define FR_PEEK_INFO_N 5

/* A process-private handle on a mapped ring. */
typedef struct fr_ring fr_ring;

/* Opening. Each returns a status; on success *out is a handle to free with fr_ring_free. */
int fr_ring_open_anonymous(uint64_t capacity, int contract, fr_ring **out);
int fr_ring_create(const char *name, uint64_t capacity, int contract, fr_ring **out);
/* *found_version receives the version of a ring of another version (FR_RING_BAD_VERSION). */
int fr_ring_attach(const char *name, fr_ring **out, uint32_t *found_version);
int fr_ring_unlink(const char *name);
/* Unmaps the region and frees the handle. Safe on NULL. */
void fr_ring_free(fr_ring *h);
/* A handle on which every operation returns FR_RING_DETACHED. */
fr_ring *fr_ring_detached(void);
/* FR_RING_OK when `capacity` is allowed, else FR_RING_INVALID. */
int fr_ring_check_capacity(uint64_t capacity);

/* Settings of this handle (not shared): seconds are given in nanoseconds. */
void fr_ring_set_liveness(fr_ring *h, int64_t liveness_ns);
void fr_ring_set_spin(fr_ring *h, int64_t spin_ns);

/* Producers. timeout_ns: < 0 waits forever, 0 never waits.
 * push: one message (null key) of `len` bytes; returns a status.
 * push_batch: n messages; each column is offsets (n+1 int64 into data) and an optional
 * validity array (NULL: all present; else 0 marks a null item). Returns how many messages
 * went in (whole messages, in order; fewer than n only when the timeout expired or the ring
 * was closed meanwhile), or a status < 0 when none did. */
int fr_ring_push_spsc(fr_ring *h, const char *value, uint64_t len, int64_t timeout_ns);
int fr_ring_push_mpsc(fr_ring *h, const char *value, uint64_t len, int64_t timeout_ns);
int64_t fr_ring_push_batch_spsc(fr_ring *h, const int64_t *key_offsets, const uint8_t *key_data,
                                const uint8_t *key_valid, const int64_t *value_offsets,
                                const uint8_t *value_data, const uint8_t *value_valid, uint64_t n,
                                int64_t timeout_ns);
int64_t fr_ring_push_batch_mpsc(fr_ring *h, const int64_t *key_offsets, const uint8_t *key_data,
                                const uint8_t *key_valid, const int64_t *value_offsets,
                                const uint8_t *value_data, const uint8_t *value_valid, uint64_t n,
                                int64_t timeout_ns);

/* Consumer (one at a time).
 * pop: copies the next message's value (its key is dropped) into out (out_cap bytes) and
 * returns its length (>= 0), or a status < 0. FR_RING_NOTED is a success to look at: info[0] =
 * the length, info[1] = bits FR_RING_SKIPPED (records of a dead producer were skipped) and
 * FR_RING_NULL_VALUE (the value is null). FR_RING_SMALL_BUFFER leaves the message in place
 * with info[0] = the length needed.
 * peek_batch: waits for at least one message and measures up to max_messages of them (at most
 * max_bytes of key + value bytes, but always one); fills info (FR_PEEK_*). take_batch then
 * copies exactly those messages into arrays sized from info and consumes them. */
int64_t fr_ring_pop(fr_ring *h, char *out, uint64_t out_cap, int64_t timeout_ns, uint64_t *info);
/* The same with the buffers given once to fr_ring_set_pop_buffers (fewer arguments on the hot
 * path of a binding); the caller keeps them alive until it registers others or frees h. */
void fr_ring_set_pop_buffers(fr_ring *h, char *out, uint64_t out_cap, uint64_t *info);
int64_t fr_ring_pop_registered(fr_ring *h, int64_t timeout_ns);
int fr_ring_peek_batch(fr_ring *h, uint64_t max_messages, uint64_t max_bytes, int64_t timeout_ns,
                       uint64_t *info);
int fr_ring_take_batch(fr_ring *h, int64_t *key_offsets, uint8_t *key_data, uint8_t *key_valid,
                       int64_t *value_offsets, uint8_t *value_data, uint8_t *value_valid);

/* Closes the ring for every handle: wakes every waiter; later pushes fail with FR_RING_CLOSED,
 * the consumer drains what was committed. */
void fr_ring_close(fr_ring *h);
/* Fills out[FR_STAT_N] (see FR_STAT_*). */
void fr_ring_stats(fr_ring *h, uint64_t *out);
/* The data position of the last FR_RING_CORRUPT report on this handle. */
uint64_t fr_ring_error_position(fr_ring *h);

/* Crash-test hooks: leave a half-done operation behind, as a process killed at that point
 * would. stall_producer claims room for one message of `len` bytes; stage 0 stops before the
 * marker, stage 1 after the marker and half of the body. stall_consumer reads the next
 * message; stage 0 stops before storing head, stage 1 after storing head and zeroing half of
 * the record (before `free`). Nothing in normal use calls these. */
int fr_ring_test_stall_producer(fr_ring *h, uint64_t len, int stage);
int fr_ring_test_stall_consumer(fr_ring *h, int stage);
/* Writes `word` as the header at data position `pos` (corruption tests). */
void fr_ring_test_poke(fr_ring *h, uint64_t pos, uint64_t word);

#endif
