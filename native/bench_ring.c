/*
 * bench_ring.c: the ring's own ceiling across two processes, with no Python in the way.
 *
 *   cc -O2 -std=c11 -Inative native/bench_ring.c -o /tmp/bench_ring -pthread && /tmp/bench_ring
 *
 * A forked child pushes n messages (in batches of `batch`), the parent takes them with
 * peek_batch / take_batch into private arrays, and reports messages and bytes per second from
 * its first message to its last. benchmarks/test_ring.py measures the Python API against the
 * baselines; this program says how much of that time the C core itself needs.
 */
#include "ring.c"

#include <stdio.h>
#include <sys/wait.h>

static void run(int contract, uint64_t capacity, uint64_t size, uint64_t batch, uint64_t n)
{
    printf("%4lu KiB ring: ", (unsigned long)(capacity >> 10));
    fr_ring *h;
    if (fr_ring_open_anonymous(capacity, contract, &h) != FR_RING_OK)
        exit(1);
    uint8_t *src = malloc(size * batch), *dst = malloc(size * batch);
    int64_t *offsets = malloc(sizeof(int64_t) * (batch + 1));
    int64_t *key_out = malloc(sizeof(int64_t) * (batch + 1));
    int64_t *value_out = malloc(sizeof(int64_t) * (batch + 1));
    uint8_t *valid = malloc(2 * batch), key_data[1];
    memset(src, 7, size * batch);
    for (uint64_t i = 0; i <= batch; i++)
        offsets[i] = (int64_t)(i * size);
    pid_t pid = fork();
    if (pid == 0) {
        for (uint64_t sent = 0; sent < n; sent += batch)
            (contract == FR_RING_MPSC ? fr_ring_push_batch_mpsc : fr_ring_push_batch_spsc)(
                h, NULL, NULL, NULL, offsets, src, NULL, batch, -1);
        _exit(0);
    }
    uint64_t got = 0, info[FR_PEEK_INFO_N];
    int64_t start = 0;
    while (got < n) {
        fr_ring_peek_batch(h, batch, UINT64_MAX, -1, info);
        fr_ring_take_batch(h, key_out, key_data, valid, value_out, dst, valid + batch);
        if (got == 0)
            start = now_ns();
        got += info[FR_PEEK_N];
    }
    double seconds = (double)(now_ns() - start) / 1e9;
    waitpid(pid, NULL, 0);
    printf("%s %6lu-byte messages, batches of %5lu: %7.2f M msg/s %6.2f GB/s\n",
           contract == FR_RING_MPSC ? "mpsc" : "spsc", (unsigned long)size, (unsigned long)batch,
           (double)n / seconds / 1e6, (double)(n * size) / seconds / 1e9);
    fr_ring_free(h);
    free(src), free(dst), free(offsets), free(key_out), free(value_out), free(valid);
}

int main(void)
{
    for (int contract = FR_RING_SPSC; contract <= FR_RING_MPSC; contract++) {
        /* the ring sizes of benchmarks/test_ring.py's scenarios, plus 4 MiB for the batches */
        run(contract, 1 << 20, 100, 1000, 20000000);
        run(contract, 1 << 22, 100, 1000, 20000000);
        run(contract, 1 << 22, 100, 1, 5000000);
        run(contract, 1 << 22, 65536, 1, 200000);
        run(contract, 1 << 22, 65536, 16, 200000);
    }
    return 0;
}
