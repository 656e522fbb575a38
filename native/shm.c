/*
 * paralab_shm: ParaLab's shared-memory data plane in native code. Plain C over
 * N-API (no node-addon-api, no dependencies): the same binary loads in Node
 * and in Electron (ranks run with ELECTRON_RUN_AS_NODE) without a rebuild.
 *
 * No external ArrayBuffer is ever created (V8's sandbox, on in Electron,
 * forbids them): the mapping stays behind an opaque handle, and JavaScript
 * hands its own (V8-owned) typed arrays to each call, which copies in and out.
 *
 *   create(path, bytes, header: Int32Array)      host: make the segment file, stamp its header
 *   open(path, n, me, params: Float64Array)      -> handle (params: slotBytes, chunkBytes,
 *                                                   chunks, spinUs, blockMs, timeoutMs)
 *   close(h) · join(h) -> last? · markClosed(h, failed) · alive(h, r)
 *
 *   collectives, each one call (layout and algorithms: main/engine/comm/shm.ts):
 *     allReduce(h, io, buf) · reduceScatter(h, io, buf, counts, out)
 *     allGather(h, io, chunk, out|null) · allToAllV(h, io, send, sendCounts, recvCounts|null, out|null)
 *     broadcast(h, io, buf, root) · barrier(h, io)
 *   -> DONE | BLOCKED | NEED_OUT | PEER_GONE | TIMEOUT | BAD_LENGTH | BAD_OUT | CLOSED
 *   A call spins for spinUs, then sleeps on the futex of the awaited word
 *   until blockMs after the op began; then it returns BLOCKED and keeps its
 *   place: the caller awaits waitAsync(h) (the sleep taken on a libuv pool
 *   thread, so the event loop runs) and repeats the same call, which resumes.
 *   NEED_OUT: the result's length was learned from the peers (io[2]); repeat
 *   the call with an output array of that length. io (Float64Array, 8 + n):
 *   [ms, waitMs, floats needed, peer, …, per-rank lengths or counts].
 *
 *   send / recv mailboxes, driven from JavaScript (shm-mailbox.ts):
 *     load(h, word) · store(h, word, v) · add(h, word, d) -> old · ring(h, word, sleepWord, force)
 *     boxWrite(h, a, b, k, src, srcOffset, floats) · boxRead(h, a, b, k, dst, dstOffset, floats)
 *     bellWaitAsync(h, word, expected, ms) -> Promise<0 woken | 1 differed | 2 timed out>
 *
 *   helpers: reduceInto(dst, srcs, dst2?) (the socket transports' sum) · pinProcess(cpus) -> threads pinned
 *
 * Waiting on a shared word is wait_on / wake_all below, the only part that is
 * platform-specific (Linux futex on a shared, not PRIVATE, word).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ── platform: wait on / wake a shared 32-bit word ─────────────────────── */

/* 0 woken (or spurious), 1 the word no longer held `expected`, 2 timed out */
static int wait_on(int32_t *w, int32_t expected, double ms) {
  struct timespec ts;
  if (ms < 0) ms = 0;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
  long r = syscall(SYS_futex, w, FUTEX_WAIT, expected, &ts, NULL, 0);
  return r == 0 || errno == EINTR ? 0 : errno == ETIMEDOUT ? 2 : 1;
}

static void wake_all(int32_t *w) { syscall(SYS_futex, w, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0); }

/* ── the segment ───────────────────────────────────────────────────────── */

#define LINE 128
#define MAXN 64
#define MAGIC 0x50534d31
#define VERSION 1
#define H_JOINED 6
#define R_ARRIVE 0
#define R_ARRIVE_SLEEP 1
#define R_BELL 2
#define R_BELL_SLEEP 3
#define R_PID 4
#define R_STATE 5
#define STATE_LIVE 0
#define STATE_CLOSED 1
#define STATE_FAILED 2
#define SLICE_MS 50.0
#define IO_HEAD 8

enum { DONE, BLOCKED, NEED_OUT, PEER_GONE, TIMEOUT, BAD_LENGTH, BAD_OUT, CLOSED };
enum { OP_NONE, OP_ALL_REDUCE, OP_REDUCE_SCATTER, OP_ALL_GATHER, OP_ALL_TO_ALL, OP_BROADCAST, OP_BARRIER };

typedef struct {
  char *base;
  size_t bytes;
  int mapped, closing, pending; /* pending: pool-thread waits in flight (the unmap waits for them) */
  int n, me;
  size_t W; /* floats per slot */
  size_t chunk_bytes, chunks;
  size_t rank_off, pair_off, slot_off, slot_hdr, slot_stride, box_off;
  double spin_us, block_ms, timeout_ms;
  int32_t gen;
  uint32_t round;
  int32_t pids[MAXN];
  /* the collective in progress: where to resume */
  int op, step, k, windows, p, resumed;
  double t0, tw, first_wait;
  int wait_rank;
  int32_t wait_gen;
  int32_t c[MAXN];        /* all_gather: lengths learned; all_to_all: what each peer sends me */
  int32_t sc[MAXN][MAXN]; /* all_to_all: every rank's send counts, its own piece zeroed */
} group;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* The layout of shm-segment.ts's shmLayout, to the byte. */
static size_t layout(group *g, int n, size_t slot_bytes, size_t chunk_bytes, size_t chunks) {
  g->rank_off = LINE;
  g->pair_off = LINE + (size_t)n * LINE;
  g->slot_hdr = align_up(4 * (size_t)n, LINE);
  g->slot_stride = g->slot_hdr + slot_bytes;
  g->slot_off = g->pair_off + (size_t)n * n * LINE;
  g->box_off = g->slot_off + 2 * (size_t)n * g->slot_stride;
  return g->box_off + (size_t)n * n * chunks * chunk_bytes;
}

static int32_t *ctrl(group *g) { return (int32_t *)g->base; }
static int32_t *rank_word(group *g, int r, int w) { return (int32_t *)(g->base + g->rank_off + (size_t)r * LINE) + w; }
static int32_t *head(group *g, int r, int p) { return (int32_t *)(g->base + g->slot_off + (size_t)(2 * r + p) * g->slot_stride); }
static float *slot(group *g, int r, int p) { return (float *)((char *)head(g, r, p) + g->slot_hdr); }
static float *box(group *g, int a, int b, int k) { return (float *)(g->base + g->box_off + (((size_t)a * g->n + b) * g->chunks + k) * g->chunk_bytes); }

static int32_t ld(int32_t *w) { return __atomic_load_n(w, __ATOMIC_SEQ_CST); }
static void st(int32_t *w, int32_t v) { __atomic_store_n(w, v, __ATOMIC_SEQ_CST); }

static void publish(int32_t *w, int32_t v, int32_t *sleepers) {
  st(w, v);
  if (ld(sleepers) > 0) wake_all(w);
}

static void ring(int32_t *w, int32_t *sleepers, int force) {
  __atomic_fetch_add(w, 1, __ATOMIC_SEQ_CST);
  if (force || ld(sleepers) > 0) wake_all(w);
}

static void mark_closed(group *g, int failed) {
  st(rank_word(g, g->me, R_STATE), failed ? STATE_FAILED : STATE_CLOSED);
  wake_all(rank_word(g, g->me, R_ARRIVE));
  for (int r = 0; r < g->n; r++) ring(rank_word(g, r, R_BELL), rank_word(g, r, R_BELL_SLEEP), 1);
}

static int alive(group *g, int r) {
  if (ld(rank_word(g, r, R_STATE)) != STATE_LIVE) return 0;
  if (!g->pids[r]) g->pids[r] = ld(rank_word(g, r, R_PID));
  if (!g->pids[r]) return 1;
  return kill(g->pids[r], 0) == 0 || errno == EPERM;
}

/* ── waiting for the peers' generations ────────────────────────────────── */

static int reached(group *g, int r, int32_t gen) { return (int32_t)((uint32_t)ld(rank_word(g, r, R_ARRIVE)) - (uint32_t)gen) >= 0; }

static void arrive(group *g) {
  g->gen = (int32_t)((uint32_t)g->gen + 1);
  publish(rank_word(g, g->me, R_ARRIVE), g->gen, rank_word(g, g->me, R_ARRIVE_SLEEP));
  if (g->first_wait < 0 && g->tw < 0) g->tw = now_ms();
}

/* A peer we wait for is gone, or the op ran out of time: the status to return (this rank is then marked failed), else DONE. */
static int check_peer(group *g, int r, double io_peer[1]) {
  int gone = !alive(g, r);
  if (!gone && now_ms() - g->t0 <= g->timeout_ms) return DONE;
  io_peer[0] = r;
  mark_closed(g, 1);
  return gone ? PEER_GONE : TIMEOUT;
}

/*
 * Until every peer has reached g->gen. Spin up to spinUs, then sleep on the
 * futex until blockMs after the op began: DONE, BLOCKED (waitAsync, then
 * repeat the call), or PEER_GONE / TIMEOUT. The spin does not yield: with a
 * CPU-bound process beside the ranks, sched_yield handed that process our
 * core for a whole time slice, and the peer's arrival waited for it (tiny
 * model, tp=2 decode beside one busy loop: 8.9 ms per token with a yield
 * every 4 µs, 2.1 ms without). Sleeping on the futex gives the core away
 * and is woken at once.
 */
static int wait_all(group *g, double *io) {
  int32_t gen = g->gen;
  for (int r = 0; r < g->n; r++) {
    if (r == g->me || reached(g, r, gen)) continue;
    if (!g->resumed) {
      double end = now_ms() + g->spin_us / 1000;
      int ok = 0;
      while (!ok) {
        for (int i = 0; i < 64 && !ok; i++) ok = reached(g, r, gen);
        if (ok || now_ms() > end) break;
      }
      if (ok) continue;
    }
    int32_t *w = rank_word(g, r, R_ARRIVE), *sleepers = rank_word(g, r, R_ARRIVE_SLEEP);
    while (!reached(g, r, gen)) {
      double left = g->t0 + g->block_ms - now_ms();
      if (left <= 0 || g->resumed) {
        int s = check_peer(g, r, io + 3);
        if (s != DONE) return s;
        g->wait_rank = r;
        g->wait_gen = gen;
        return BLOCKED;
      }
      __atomic_fetch_add(sleepers, 1, __ATOMIC_SEQ_CST);
      int32_t v = ld(w);
      if ((int32_t)((uint32_t)v - (uint32_t)gen) < 0) wait_on(w, v, left < SLICE_MS ? left : SLICE_MS);
      __atomic_fetch_sub(sleepers, 1, __ATOMIC_SEQ_CST);
      if (!reached(g, r, gen)) {
        int s = check_peer(g, r, io + 3);
        if (s != DONE) return s;
      }
    }
  }
  g->resumed = 0;
  if (g->first_wait < 0) g->first_wait = now_ms() - g->tw;
  return DONE;
}

/* ── argument helpers ──────────────────────────────────────────────────── */

static napi_value args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_value undef;
  napi_get_undefined(env, &undef);
  for (size_t i = argc; i < want; i++) argv[i] = undef;
  return undef;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_undefined || t == napi_null;
}

static float empty_f32[1];

/* The data of a typed array of `type` (a dummy pointer when empty); NULL if v is not one. */
static void *typed(napi_env env, napi_value v, napi_typedarray_type type, size_t *n) {
  napi_typedarray_type t;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, n, &data, NULL, NULL) != napi_ok || t != type) return NULL;
  return *n == 0 || !data ? (void *)empty_f32 : data;
}

static float *f32(napi_env env, napi_value v, size_t *n) { return typed(env, v, napi_float32_array, n); }

static group *handle(napi_env env, napi_value v) {
  group *g = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, (void **)&g) != napi_ok || !g) {
    throw_type(env, "paralab_shm: not a handle returned by open()");
    return NULL;
  }
  if (!g->mapped || g->closing) {
    napi_throw_error(env, NULL, "paralab_shm: this group's segment is closed");
    return NULL;
  }
  return g;
}

static napi_value throw_errno(napi_env env, const char *what, const char *path) {
  char msg[4200];
  snprintf(msg, sizeof msg, "paralab_shm.%s(%s): %s", what, path, strerror(errno));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* ── create / open / close ─────────────────────────────────────────────── */

static napi_value create(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  char path[4096];
  size_t len, hn;
  double bytesD;
  int32_t *hdr = typed(env, argv[2], napi_int32_array, &hn);
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || napi_get_value_double(env, argv[1], &bytesD) != napi_ok || bytesD <= 0 || !hdr || hn > LINE / 4) {
    return throw_type(env, "paralab_shm.create(path: string, bytes: number > 0, header: Int32Array (≤ 32 words))");
  }
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return throw_errno(env, "create/open", path);
  if (ftruncate(fd, (off_t)bytesD) != 0) {
    close(fd);
    unlink(path);
    return throw_errno(env, "create/size", path);
  }
  if (hn && pwrite(fd, hdr, hn * 4, 0) != (ssize_t)(hn * 4)) {
    close(fd);
    unlink(path);
    return throw_errno(env, "create/header", path);
  }
  close(fd);
  return NULL;
}

static void unmap(group *g) {
  if (g->mapped) munmap(g->base, g->bytes);
  g->mapped = 0;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  group *g = data; /* never while a pool thread waits on it: the wait holds a reference */
  unmap(g);
  free(g);
}

static napi_value open_group(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv)) return NULL;
  char path[4096];
  size_t len, pn;
  int32_t n, me;
  double *p = typed(env, argv[3], napi_float64_array, &pn);
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || napi_get_value_int32(env, argv[1], &n) != napi_ok || napi_get_value_int32(env, argv[2], &me) != napi_ok || n < 1 || n > MAXN || me < 0 || me >= n || !p || pn < 6) {
    return throw_type(env, "paralab_shm.open(path: string, n: 1…64, me: 0…n−1, params: Float64Array [slotBytes, chunkBytes, chunks, spinUs, blockMs, timeoutMs])");
  }
  group *g = calloc(1, sizeof *g);
  if (!g) return throw_errno(env, "open/alloc", path);
  g->n = n;
  g->me = me;
  g->W = (size_t)p[0] / 4;
  g->chunk_bytes = (size_t)p[1];
  g->chunks = (size_t)p[2];
  g->spin_us = p[3];
  g->block_ms = p[4];
  g->timeout_ms = p[5];
  if (!(p[0] >= 4.0 * n && p[1] >= 4 && p[2] >= 1 && p[2] <= 4)) {
    free(g);
    return throw_type(env, "paralab_shm.open: slotBytes must hold at least one float per rank, chunkBytes ≥ 4, chunks 1…4");
  }
  g->bytes = layout(g, n, (size_t)p[0], g->chunk_bytes, g->chunks);
  int fd = open(path, O_RDWR);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    if (fd >= 0) close(fd);
    free(g);
    return throw_errno(env, "open", path);
  }
  if ((size_t)sb.st_size < g->bytes) {
    close(fd);
    free(g);
    errno = EINVAL;
    return throw_errno(env, "open (file shorter than the segment: host and rank disagree on its layout)", path);
  }
  void *base = mmap(NULL, g->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) {
    free(g);
    return throw_errno(env, "open/mmap", path);
  }
  g->base = base;
  g->mapped = 1;
  napi_value h;
  if (napi_create_external(env, g, finalize, NULL, &h) != napi_ok) {
    unmap(g);
    free(g);
    napi_throw_error(env, NULL, "paralab_shm.open: napi_create_external failed");
    return NULL;
  }
  return h;
}

/* The segment's first words, as the host stamped them (checked by shm-segment.ts). */
static napi_value header(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  group *g = handle(env, argv[0]);
  if (!g) return NULL;
  size_t n;
  int32_t *out = typed(env, argv[1], napi_int32_array, &n);
  if (!out || n > LINE / 4) return throw_type(env, "paralab_shm.header(h, out: Int32Array (≤ 32 words))");
  for (size_t i = 0; i < n; i++) out[i] = ld(ctrl(g) + i);
  return NULL;
}

static napi_value start(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  group *g = handle(env, argv[0]);
  if (!g) return NULL;
  st(rank_word(g, g->me, R_PID), (int32_t)getpid());
  st(rank_word(g, g->me, R_STATE), STATE_LIVE);
  napi_value out;
  napi_get_boolean(env, __atomic_fetch_add(ctrl(g) + H_JOINED, 1, __ATOMIC_SEQ_CST) == g->n - 1, &out);
  return out;
}

static napi_value close_group(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  group *g = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&g) != napi_ok || !g) return throw_type(env, "paralab_shm.close(h)");
  if (g->pending) g->closing = 1; /* unmapped when the last pool-thread wait returns */
  else unmap(g);
  return NULL;
}

static napi_value mark_closed_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  group *g = handle(env, argv[0]);
  bool failed = false;
  if (!g) return NULL;
  napi_get_value_bool(env, argv[1], &failed);
  mark_closed(g, failed);
  return NULL;
}

static napi_value alive_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  group *g = handle(env, argv[0]);
  int32_t r;
  if (!g) return NULL;
  if (napi_get_value_int32(env, argv[1], &r) != napi_ok || r < 0 || r >= g->n) return throw_type(env, "paralab_shm.alive(h, rank in the group)");
  napi_value out;
  napi_get_boolean(env, alive(g, r), &out);
  return out;
}

/* ── the collectives ───────────────────────────────────────────────────── */

static size_t clampz(long x, size_t hi) { return x <= 0 ? 0 : (size_t)x < hi ? (size_t)x : hi; }

#define MAX_SRCS MAXN
#define BLOCK 4096 /* floats: 16 KiB, so a block's partial sum stays in L1 */

static void add2(float *restrict d, const float *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] += s[i];
}

static void sum2(float *restrict d, const float *restrict a, const float *restrict b, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = a[i] + b[i];
}

/* dst = src[0] + src[1] + … in that order (every rank that sums one chunk gets its bits), blockwise; also to dst2. */
static void reduce(float *dst, const float *const *src, int k, size_t n, float *dst2) {
  for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
    size_t len = n - i0 < BLOCK ? n - i0 : BLOCK;
    float *d = dst + i0;
    if (k == 1) memcpy(d, src[0] + i0, len * 4);
    else sum2(d, src[0] + i0, src[1] + i0, len);
    for (int r = 2; r < k; r++) add2(d, src[r] + i0, len);
    if (dst2) memcpy(dst2 + i0, d, len * 4);
  }
}

static void even_counts(size_t total, int n, size_t *c, size_t *offs) {
  offs[0] = 0;
  for (int i = 0; i < n; i++) {
    c[i] = total / n + ((size_t)i < total % n ? 1 : 0);
    offs[i + 1] = offs[i] + c[i];
  }
}

/* Begin (op not in progress) or resume (same op) a collective. CLOSED: the group was closed. */
static int enter(group *g, int op) {
  if (ld(rank_word(g, g->me, R_STATE)) != STATE_LIVE) {
    g->op = OP_NONE;
    return CLOSED;
  }
  if (g->op == op) return DONE; /* resuming after BLOCKED or NEED_OUT */
  g->op = op;
  g->step = 0;
  g->k = 0;
  g->windows = 1;
  g->resumed = 0;
  g->t0 = now_ms();
  g->tw = -1;
  g->first_wait = -1;
  return DONE;
}

/* The op's end: its times in io; the group is free for the next op. */
static int leave(group *g, double *io, int status) {
  if (status == BLOCKED || status == NEED_OUT) return status;
  io[0] = now_ms() - g->t0;
  io[1] = g->first_wait < 0 ? 0 : g->first_wait;
  g->op = OP_NONE;
  return status;
}

static int lengths_agree(group *g, int p, size_t L, double *io) {
  int ok = 1;
  for (int r = 0; r < g->n; r++) {
    io[IO_HEAD + r] = head(g, r, p)[0];
    if ((size_t)head(g, r, p)[0] != L) ok = 0;
  }
  if (!ok) mark_closed(g, 1);
  return ok;
}

static int all_reduce(group *g, double *io, float *buf, size_t L) {
  int n = g->n, me = g->me, s;
  size_t c[MAXN], offs[MAXN + 1], wc = g->W / n;
  even_counts(L, n, c, offs);
  if (g->step == 0 && g->k == 0) g->windows = (int)((c[0] + wc - 1) / wc);
  for (; g->k < g->windows; g->k++) {
    size_t k = (size_t)g->k;
#define AT(r) (offs[r] + k * wc)
#define LEN(r) clampz((long)c[r] - (long)(k * wc), wc)
    if (g->step == 0) {
      g->p = g->round++ & 1;
      float *mine = slot(g, me, g->p);
      for (int r = 0; r < n; r++)
        if (r != me && LEN(r) > 0) memcpy(mine + r * wc, buf + AT(r), LEN(r) * 4);
      if (k == 0) head(g, me, g->p)[0] = (int32_t)L;
      arrive(g);
      g->step = 1;
    }
    if (g->step == 1) {
      if ((s = wait_all(g, io)) != DONE) return s;
      if (k == 0 && !lengths_agree(g, g->p, L, io)) return BAD_LENGTH;
      size_t m = LEN(me);
      if (m > 0) {
        const float *src[MAXN];
        float *own = buf + AT(me);
        for (int r = 0; r < n; r++) src[r] = r == me ? own : slot(g, r, g->p) + me * wc;
        reduce(slot(g, me, g->p) + me * wc, src, n, m, own);
      }
      arrive(g);
      g->step = 2;
    }
    if ((s = wait_all(g, io)) != DONE) return s;
    for (int r = 0; r < n; r++)
      if (r != me && LEN(r) > 0) memcpy(buf + AT(r), slot(g, r, g->p) + r * wc, LEN(r) * 4);
    g->step = 0;
  }
  return DONE;
}

static int reduce_scatter(group *g, double *io, float *buf, size_t L, const size_t *c, float *out) {
  int n = g->n, me = g->me, s;
  size_t offs[MAXN + 1], wc = g->W / n, most = 0;
  offs[0] = 0;
  for (int r = 0; r < n; r++) {
    offs[r + 1] = offs[r] + c[r];
    if (c[r] > most) most = c[r];
  }
  if (g->step == 0 && g->k == 0) g->windows = most ? (int)((most + wc - 1) / wc) : 1;
  for (; g->k < g->windows; g->k++) {
    size_t k = (size_t)g->k;
    if (g->step == 0) {
      g->p = g->round++ & 1;
      float *mine = slot(g, me, g->p);
      for (int r = 0; r < n; r++)
        if (r != me && LEN(r) > 0) memcpy(mine + r * wc, buf + AT(r), LEN(r) * 4);
      if (k == 0) head(g, me, g->p)[0] = (int32_t)L;
      arrive(g);
      g->step = 1;
    }
    if ((s = wait_all(g, io)) != DONE) return s;
    if (k == 0 && !lengths_agree(g, g->p, L, io)) return BAD_LENGTH;
    size_t m = LEN(me);
    if (m > 0) {
      const float *src[MAXN];
      for (int r = 0; r < n; r++) src[r] = r == me ? buf + AT(me) : slot(g, r, g->p) + me * wc;
      reduce(out + k * wc, src, n, m, NULL);
    }
    g->step = 0;
  }
#undef AT
#undef LEN
  return DONE;
}

/*
 * All-gather and all-to-all after their first wait: offs = where each peer's
 * part lands in out (prefix sums of the lengths learned from the peers, g->c,
 * which io reports). At step 2 of the first window the output must hold their
 * total: NEED_OUT while JS has not given one, BAD_OUT when it is the wrong size
 * (this rank then leaves: peers with more windows would read its next op as
 * this one's).
 */
static int learned_out(group *g, double *io, size_t *offs, size_t out_len, int have_out) {
  int n = g->n;
  offs[0] = 0;
  for (int r = 0; r < n; r++) offs[r + 1] = offs[r] + (size_t)g->c[r];
  for (int r = 0; r < n; r++) io[IO_HEAD + r] = g->c[r];
  if (g->step != 2 || g->k != 0) return DONE;
  io[2] = (double)offs[n];
  if (!have_out) return NEED_OUT;
  if (out_len != offs[n]) {
    mark_closed(g, 1);
    return BAD_OUT;
  }
  return DONE;
}

/* all_gather: step 0 post, 1 wait, 2 (k = 0) learn the lengths / need out, 3 copy */
static int all_gather(group *g, double *io, const float *chunk, size_t len, float *out, size_t out_len, int have_out) {
  int n = g->n, me = g->me, s;
  size_t W = g->W, offs[MAXN + 1];
  for (;;) {
    size_t k = (size_t)g->k;
    if (g->step == 0) {
      g->p = g->round++ & 1;
      size_t a = k * W < len ? k * W : len, b = (k + 1) * W < len ? (k + 1) * W : len;
      if (b > a) memcpy(slot(g, me, g->p), chunk + a, (b - a) * 4);
      if (k == 0) head(g, me, g->p)[0] = (int32_t)len;
      arrive(g);
      g->step = 1;
    }
    if (g->step == 1) {
      if ((s = wait_all(g, io)) != DONE) return s;
      if (k == 0) {
        size_t most = 0;
        for (int r = 0; r < n; r++) {
          g->c[r] = head(g, r, g->p)[0];
          if ((size_t)g->c[r] > most) most = (size_t)g->c[r];
        }
        g->windows = most ? (int)((most + W - 1) / W) : 1;
      }
      g->step = 2;
    }
    if ((s = learned_out(g, io, offs, out_len, have_out)) != DONE) return s;
    if (g->step == 2) {
      if (k == 0 && len) memcpy(out + offs[me], chunk, len * 4);
      g->step = 3;
    }
    for (int r = 0; r < n; r++) {
      size_t l = clampz((long)g->c[r] - (long)(k * W), W);
      if (r != me && l > 0) memcpy(out + offs[r] + k * W, slot(g, r, g->p), l * 4);
    }
    g->step = 0;
    if (++g->k >= g->windows) return DONE;
  }
}

static int all_to_all(group *g, double *io, const float *send, size_t send_len, const int32_t *scnt, float *out, size_t out_len, int have_out) {
  int n = g->n, me = g->me, s;
  size_t W = g->W, so[MAXN + 1], oo[MAXN + 1];
  so[0] = 0;
  for (int r = 0; r < n; r++) so[r + 1] = so[r] + (size_t)scnt[r];
  size_t stream = send_len - (size_t)scnt[me];
  for (;;) {
    size_t k = (size_t)g->k;
    if (g->step == 0) {
      g->p = g->round++ & 1;
      float *mine = slot(g, me, g->p);
      size_t w0 = k * W < stream ? k * W : stream, w1 = (k + 1) * W < stream ? (k + 1) * W : stream;
      /* my stream: my pieces for the others in rank order, my own skipped */
      size_t a = w0, b = w1 < so[me] ? w1 : so[me];
      if (b > a) memcpy(mine, send + a, (b - a) * 4);
      a = (w0 > so[me] ? w0 : so[me]) + (size_t)scnt[me];
      b = w1 + (size_t)scnt[me];
      if (b > a) memcpy(mine + (a - (size_t)scnt[me] - w0), send + a, (b - a) * 4);
      if (k == 0) memcpy(head(g, me, g->p), scnt, (size_t)n * 4);
      arrive(g);
      g->step = 1;
    }
    if (g->step == 1) {
      if ((s = wait_all(g, io)) != DONE) return s;
      if (k == 0) {
        size_t most = 0;
        for (int r = 0; r < n; r++) {
          size_t tot = 0;
          for (int q = 0; q < n; q++) {
            g->sc[r][q] = q == r ? 0 : head(g, r, g->p)[q];
            tot += (size_t)g->sc[r][q];
          }
          g->c[r] = head(g, r, g->p)[me];
          if (tot > most) most = tot;
        }
        g->windows = most ? (int)((most + W - 1) / W) : 1;
      }
      g->step = 2;
    }
    if ((s = learned_out(g, io, oo, out_len, have_out)) != DONE) return s;
    if (g->step == 2) {
      if (k == 0 && scnt[me]) memcpy(out + oo[me], send + so[me], (size_t)scnt[me] * 4);
      g->step = 3;
    }
    for (int r = 0; r < n; r++) {
      if (r == me) continue;
      size_t ro = 0;
      for (int q = 0; q < me; q++) ro += (size_t)g->sc[r][q];
      size_t ro1 = ro + (size_t)g->sc[r][me];
      size_t a = ro > k * W ? ro : k * W, b = ro1 < (k + 1) * W ? ro1 : (k + 1) * W;
      if (b > a) memcpy(out + oo[r] + (a - ro), slot(g, r, g->p) + (a - k * W), (b - a) * 4);
    }
    g->step = 0;
    if (++g->k >= g->windows) return DONE;
  }
}

static int broadcast(group *g, double *io, float *buf, size_t L, int root) {
  int me = g->me, s;
  size_t W = g->W;
  if (g->step == 0 && g->k == 0) g->windows = L ? (int)((L + W - 1) / W) : 1;
  for (; g->k < g->windows; g->k++) {
    size_t k = (size_t)g->k, a = k * W, b = (k + 1) * W < L ? (k + 1) * W : L;
    if (g->step == 0) {
      g->p = g->round++ & 1;
      if (me == root && b > a) memcpy(slot(g, me, g->p), buf + a, (b - a) * 4);
      if (k == 0) head(g, me, g->p)[0] = (int32_t)L;
      arrive(g);
      g->step = 1;
    }
    if ((s = wait_all(g, io)) != DONE) return s;
    if (k == 0 && !lengths_agree(g, g->p, L, io)) return BAD_LENGTH;
    if (me != root && b > a) memcpy(buf + a, slot(g, root, g->p), (b - a) * 4);
    g->step = 0;
  }
  return DONE;
}

/* The common head of every collective entry: handle, io, op state. */
#define COLL_BEGIN(nargs, OP, usage)                                     \
  napi_value argv[nargs];                                                \
  if (!args(env, info, nargs, argv)) return NULL;                        \
  group *g = handle(env, argv[0]);                                       \
  if (!g) return NULL;                                                   \
  size_t ion;                                                            \
  double *io = typed(env, argv[1], napi_float64_array, &ion);            \
  if (!io || ion < (size_t)(IO_HEAD + g->n)) return throw_type(env, usage); \
  if (enter(g, OP) == CLOSED) return int_value(env, CLOSED);

static napi_value all_reduce_js(napi_env env, napi_callback_info info) {
  COLL_BEGIN(3, OP_ALL_REDUCE, "paralab_shm.allReduce(h, io: Float64Array(8+n), buf: Float32Array)")
  size_t L;
  float *buf = f32(env, argv[2], &L);
  if (!buf) {
    g->op = OP_NONE;
    return throw_type(env, "paralab_shm.allReduce(h, io, buf: Float32Array)");
  }
  return int_value(env, leave(g, io, all_reduce(g, io, buf, L)));
}

static napi_value reduce_scatter_js(napi_env env, napi_callback_info info) {
  COLL_BEGIN(5, OP_REDUCE_SCATTER, "paralab_shm.reduceScatter(h, io: Float64Array(8+n), buf, counts, out)")
  size_t L, cn, on;
  float *buf = f32(env, argv[2], &L);
  int32_t *cnt = typed(env, argv[3], napi_int32_array, &cn);
  float *out = f32(env, argv[4], &on);
  size_t c[MAXN];
  if (!buf || !cnt || cn != (size_t)g->n || !out || on != (size_t)cnt[g->me]) {
    g->op = OP_NONE;
    return throw_type(env, "paralab_shm.reduceScatter(h, io, buf: Float32Array, counts: Int32Array(n), out: Float32Array(counts[me]))");
  }
  size_t sum = 0;
  for (int r = 0; r < g->n; r++) {
    if (cnt[r] < 0) sum = L + 1;
    c[r] = (size_t)cnt[r];
    sum += c[r];
  }
  if (sum != L || L > INT32_MAX) {
    g->op = OP_NONE;
    return throw_type(env, "paralab_shm.reduceScatter: counts must be non-negative and sum to buf.length (< 2^31)");
  }
  return int_value(env, leave(g, io, reduce_scatter(g, io, buf, L, c, out)));
}

static napi_value all_gather_js(napi_env env, napi_callback_info info) {
  COLL_BEGIN(4, OP_ALL_GATHER, "paralab_shm.allGather(h, io: Float64Array(8+n), chunk, out|null)")
  size_t len, on = 0;
  float *chunk = f32(env, argv[2], &len);
  int have_out = !is_nullish(env, argv[3]);
  float *out = have_out ? f32(env, argv[3], &on) : NULL;
  if (!chunk || (have_out && !out)) {
    g->op = OP_NONE;
    return throw_type(env, "paralab_shm.allGather(h, io, chunk: Float32Array, out: Float32Array | null)");
  }
  return int_value(env, leave(g, io, all_gather(g, io, chunk, len, out, on, have_out)));
}

static napi_value all_to_all_js(napi_env env, napi_callback_info info) {
  COLL_BEGIN(5, OP_ALL_TO_ALL, "paralab_shm.allToAllV(h, io: Float64Array(8+n), send, sendCounts, out|null)")
  size_t len, cn, on = 0;
  float *send = f32(env, argv[2], &len);
  int32_t *scnt = typed(env, argv[3], napi_int32_array, &cn);
  int have_out = !is_nullish(env, argv[4]);
  float *out = have_out ? f32(env, argv[4], &on) : NULL;
  if (!send || !scnt || cn != (size_t)g->n || (have_out && !out)) {
    g->op = OP_NONE;
    return throw_type(env, "paralab_shm.allToAllV(h, io, send: Float32Array, sendCounts: Int32Array(n), out: Float32Array | null)");
  }
  size_t sum = 0;
  for (int r = 0; r < g->n; r++) sum += scnt[r] < 0 ? len + 1 : (size_t)scnt[r];
  if (sum != len || len > INT32_MAX) {
    g->op = OP_NONE;
    return throw_type(env, "paralab_shm.allToAllV: sendCounts must be non-negative and sum to send.length (< 2^31)");
  }
  return int_value(env, leave(g, io, all_to_all(g, io, send, len, scnt, out, on, have_out)));
}

static napi_value broadcast_js(napi_env env, napi_callback_info info) {
  COLL_BEGIN(4, OP_BROADCAST, "paralab_shm.broadcast(h, io: Float64Array(8+n), buf, root)")
  size_t L;
  int32_t root;
  float *buf = f32(env, argv[2], &L);
  if (!buf || napi_get_value_int32(env, argv[3], &root) != napi_ok || root < 0 || root >= g->n) {
    g->op = OP_NONE;
    return throw_type(env, "paralab_shm.broadcast(h, io, buf: Float32Array, root: 0…n−1)");
  }
  return int_value(env, leave(g, io, broadcast(g, io, buf, L, root)));
}

static napi_value barrier_js(napi_env env, napi_callback_info info) {
  COLL_BEGIN(2, OP_BARRIER, "paralab_shm.barrier(h, io: Float64Array(8+n))")
  if (g->step == 0) {
    arrive(g);
    g->step = 1;
  }
  return int_value(env, leave(g, io, wait_all(g, io)));
}

/* The caller gave up on a collective in progress (an exception between two calls): this rank leaves the group. */
static napi_value abort_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  group *g = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&g) != napi_ok || !g) return throw_type(env, "paralab_shm.abort(h)");
  if (g->mapped && g->op != OP_NONE) mark_closed(g, 1);
  g->op = OP_NONE;
  return NULL;
}

/* ── waiting off the event loop ────────────────────────────────────────── */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  group *g;
  int32_t *w, *sleepers, expected, gen;
  int for_gen; /* 1: wait until the word reaches gen (collectives); 0: until it differs from expected (bells) */
  double ms;
  int result;
} async_wait;

static void async_run(napi_env env, void *data) {
  (void)env;
  async_wait *a = data;
  __atomic_fetch_add(a->sleepers, 1, __ATOMIC_SEQ_CST);
  int32_t v = ld(a->w);
  if (a->for_gen ? (int32_t)((uint32_t)v - (uint32_t)a->gen) < 0 : v == a->expected) a->result = wait_on(a->w, v, a->ms);
  else a->result = 1;
  __atomic_fetch_sub(a->sleepers, 1, __ATOMIC_SEQ_CST);
}

static void async_done(napi_env env, napi_status status, void *data) {
  async_wait *a = data;
  group *g = a->g;
  g->pending--;
  if (g->closing && !g->pending) unmap(g);
  napi_value out;
  napi_create_int32(env, status == napi_ok ? a->result : 0, &out);
  napi_resolve_deferred(env, a->deferred, out);
  napi_delete_reference(env, a->keep);
  napi_delete_async_work(env, a->work);
  free(a);
}

static napi_value queue_wait(napi_env env, napi_value h, group *g, async_wait *a) {
  napi_value promise, name;
  a->g = g;
  if (napi_create_promise(env, &a->deferred, &promise) != napi_ok || napi_create_reference(env, h, 1, &a->keep) != napi_ok ||
      napi_create_string_utf8(env, "paralab_shm.wait", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, async_run, async_done, a, &a->work) != napi_ok || napi_queue_async_work(env, a->work) != napi_ok) {
    free(a);
    napi_throw_error(env, NULL, "paralab_shm: could not queue a wait on the libuv pool");
    return NULL;
  }
  g->pending++;
  return promise;
}

/* After BLOCKED: sleep (≤ 50 ms, off the event loop) on the word the collective awaits; then repeat the call. */
static napi_value wait_async(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  group *g = handle(env, argv[0]);
  if (!g) return NULL;
  if (g->op == OP_NONE) return throw_type(env, "paralab_shm.waitAsync: no collective is blocked on this group");
  async_wait *a = calloc(1, sizeof *a);
  if (!a) return throw_errno(env, "waitAsync/alloc", "");
  a->w = rank_word(g, g->wait_rank, R_ARRIVE);
  a->sleepers = rank_word(g, g->wait_rank, R_ARRIVE_SLEEP);
  a->gen = g->wait_gen;
  a->for_gen = 1;
  a->ms = SLICE_MS;
  napi_value promise = queue_wait(env, argv[0], g, a);
  if (promise) g->resumed = 1;
  return promise;
}

/* ── mailbox primitives (the protocol: shm-mailbox.ts) ─────────────────── */

static int32_t *ctrl_word(napi_env env, group *g, napi_value v) {
  int32_t i;
  if (napi_get_value_int32(env, v, &i) != napi_ok || i < 0 || (size_t)i * 4 >= g->slot_off) {
    throw_type(env, "paralab_shm: control word index out of range");
    return NULL;
  }
  return ctrl(g) + i;
}

static napi_value load_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  group *g = handle(env, argv[0]);
  int32_t *w = g ? ctrl_word(env, g, argv[1]) : NULL;
  return w ? int_value(env, ld(w)) : NULL;
}

static napi_value store_js(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  group *g = handle(env, argv[0]);
  int32_t *w = g ? ctrl_word(env, g, argv[1]) : NULL;
  int32_t v;
  if (!w) return NULL;
  if (napi_get_value_int32(env, argv[2], &v) != napi_ok) return throw_type(env, "paralab_shm.store(h, word, value: int32)");
  st(w, v);
  return NULL;
}

static napi_value ring_js(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv)) return NULL;
  group *g = handle(env, argv[0]);
  int32_t *w = g ? ctrl_word(env, g, argv[1]) : NULL;
  int32_t *s = w ? ctrl_word(env, g, argv[2]) : NULL;
  bool force = false;
  if (!s) return NULL;
  napi_get_value_bool(env, argv[3], &force);
  ring(w, s, force);
  return NULL;
}

/* boxWrite(h, a, b, k, src, srcOffset, floats) / boxRead(h, a, b, k, dst, dstOffset, floats) */
static napi_value box_copy(napi_env env, napi_callback_info info, int write) {
  napi_value argv[7];
  if (!args(env, info, 7, argv)) return NULL;
  group *g = handle(env, argv[0]);
  if (!g) return NULL;
  int32_t a, b, k;
  double off, len;
  size_t n;
  float *arr = f32(env, argv[4], &n);
  if (napi_get_value_int32(env, argv[1], &a) != napi_ok || napi_get_value_int32(env, argv[2], &b) != napi_ok || napi_get_value_int32(env, argv[3], &k) != napi_ok ||
      napi_get_value_double(env, argv[5], &off) != napi_ok || napi_get_value_double(env, argv[6], &len) != napi_ok || !arr || a < 0 || a >= g->n || b < 0 ||
      b >= g->n || k < 0 || (size_t)k >= g->chunks || off < 0 || len < 0 || (size_t)off + (size_t)len > n || (size_t)len * 4 > g->chunk_bytes) {
    return throw_type(env, write ? "paralab_shm.boxWrite(h, a, b, k, src: Float32Array, offset, floats ≤ chunk)" : "paralab_shm.boxRead(h, a, b, k, dst: Float32Array, offset, floats ≤ chunk)");
  }
  float *bx = box(g, a, b, k), *p = arr + (size_t)off;
  if (len > 0) {
    if (write) memcpy(bx, p, (size_t)len * 4);
    else memcpy(p, bx, (size_t)len * 4);
  }
  return NULL;
}

static napi_value box_write(napi_env env, napi_callback_info info) { return box_copy(env, info, 1); }
static napi_value box_read(napi_env env, napi_callback_info info) { return box_copy(env, info, 0); }

/* bellWaitAsync(h, word, expected, ms): sleep off the event loop while the word holds expected. */
static napi_value bell_wait_async(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv)) return NULL;
  group *g = handle(env, argv[0]);
  int32_t *w = g ? ctrl_word(env, g, argv[1]) : NULL;
  int32_t expected;
  double ms;
  if (!w) return NULL;
  if (napi_get_value_int32(env, argv[2], &expected) != napi_ok || napi_get_value_double(env, argv[3], &ms) != napi_ok) return throw_type(env, "paralab_shm.bellWaitAsync(h, word, expected: int32, ms)");
  async_wait *a = calloc(1, sizeof *a);
  if (!a) return throw_errno(env, "bellWaitAsync/alloc", "");
  a->w = w;
  a->sleepers = w + 1; /* a bell's sleepers word follows it (R_BELL, R_BELL_SLEEP) */
  a->expected = expected;
  a->ms = ms;
  return queue_wait(env, argv[0], g, a);
}

/* ── helpers for the socket transports and the host ────────────────────── */

static napi_value reduce_into(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  size_t n, n2 = 0;
  float *dst = f32(env, argv[0], &n);
  uint32_t k;
  if (!dst || napi_get_array_length(env, argv[1], &k) != napi_ok || k == 0 || k > MAX_SRCS) return throw_type(env, "paralab_shm.reduceInto(dst: Float32Array, srcs: Float32Array[1..64], dst2?: Float32Array)");
  float *dst2 = is_nullish(env, argv[2]) ? NULL : f32(env, argv[2], &n2);
  if (!is_nullish(env, argv[2]) && (!dst2 || n2 < n)) return throw_type(env, "paralab_shm.reduceInto: dst2 must be a Float32Array at least as long as dst");
  const float *src[MAX_SRCS];
  for (uint32_t r = 0; r < k; r++) {
    napi_value e;
    size_t m;
    if (napi_get_element(env, argv[1], r, &e) != napi_ok || !(src[r] = f32(env, e, &m)) || m < n) return throw_type(env, "paralab_shm.reduceInto: every source must be a Float32Array at least as long as dst");
  }
  reduce(dst, src, (int)k, n, dst2);
  return NULL;
}

static napi_value pin_process(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  uint32_t k;
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  if (!is_array || napi_get_array_length(env, argv[0], &k) != napi_ok || k == 0) return throw_type(env, "paralab_shm.pinProcess(cpus: number[] (non-empty))");
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < k; i++) {
    napi_value e;
    int32_t cpu;
    if (napi_get_element(env, argv[0], i, &e) != napi_ok || napi_get_value_int32(env, e, &cpu) != napi_ok || cpu < 0 || cpu >= CPU_SETSIZE) {
      napi_throw_range_error(env, NULL, "paralab_shm.pinProcess: cpus must be integers 0…1023");
      return NULL;
    }
    CPU_SET(cpu, &set);
  }
  int pinned = 0;
  DIR *d = opendir("/proc/self/task");
  if (d) {
    struct dirent *t;
    while ((t = readdir(d))) {
      int tid = atoi(t->d_name);
      if (tid > 0 && sched_setaffinity(tid, sizeof set, &set) == 0) pinned++;
    }
    closedir(d);
  }
  return int_value(env, pinned);
}

static napi_value init(napi_env env, napi_value exports) {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
  napi_property_descriptor props[] = {
      FN("create", create),         FN("open", open_group),         FN("header", header),           FN("start", start),
      FN("close", close_group),     FN("markClosed", mark_closed_js), FN("alive", alive_js),        FN("allReduce", all_reduce_js),
      FN("reduceScatter", reduce_scatter_js), FN("allGather", all_gather_js), FN("allToAllV", all_to_all_js), FN("broadcast", broadcast_js),
      FN("barrier", barrier_js),    FN("abort", abort_js),    FN("waitAsync", wait_async),    FN("load", load_js),            FN("store", store_js),
      FN("ring", ring_js),          FN("boxWrite", box_write),      FN("boxRead", box_read),        FN("bellWaitAsync", bell_wait_async),
      FN("reduceInto", reduce_into), FN("pinProcess", pin_process),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
