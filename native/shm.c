/*
 * paralab_shm: the only native part of ParaLab's shared-memory data plane.
 * Plain C over N-API (no node-addon-api, no dependencies): the same binary
 * loads in Node and in Electron without a rebuild.
 *
 *   map(path, bytes, create)        -> ArrayBuffer over a MAP_SHARED file (/dev/shm);
 *                                      unmapped on GC or by unmap()
 *   unmap(ab)                       munmap now and detach ab (later use throws, never faults)
 *   externalBuffers()               -> false where V8's sandbox forbids external
 *                                      ArrayBuffers (Electron): map() cannot work there
 *   futexWait(ab, off, expected, timeoutMs) -> 0 woken | 1 value differed | 2 timed out
 *   futexWaitAsync(ab, off, expected, timeoutMs) -> Promise of the same, the sleep
 *                                   taken on a libuv pool thread so the event loop runs on
 *   futexWake(ab, off, count)       -> number of sleepers woken
 *   addInto(dst, src)               dst[i] += src[i]            (float32)
 *   reduceInto(dst, srcs, dst2?)    dst[i] = srcs[0][i] + srcs[1][i] + ...  (in that
 *                                   order, so every rank that reduces the same chunk gets
 *                                   the same bits); also stored to dst2 when given
 *   copy(dst, src)                  memcpy of min(byteLength) bytes between typed arrays
 *   yieldCpu()                      sched_yield(): lets a peer that shares this core run
 *                                   while we spin for it
 *   pinProcess(cpus)                -> threads pinned: sched_setaffinity of every thread of
 *                                   this process (threads created later inherit it)
 *
 * JavaScript spins on the shared words with Atomics.load / Atomics.store
 * (they work on non-shared Int32Arrays); only the sleeping half of a wait
 * needs the kernel, hence futex on the shared (not PRIVATE) word.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                          \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error(env, NULL, "paralab_shm: " #call " failed");          \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

typedef struct {
  void *addr;
  size_t bytes;
  int mapped;
} mapping;

static void release(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  mapping *m = hint;
  if (m->mapped) munmap(m->addr, m->bytes);
  free(m);
}

static napi_value args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_value undef;
  napi_get_undefined(env, &undef);
  for (size_t i = argc; i < want; i++) argv[i] = undef;
  return undef;
}

static napi_value throw_errno(napi_env env, const char *what, const char *path) {
  char msg[4200];
  snprintf(msg, sizeof msg, "paralab_shm.%s(%s): %s", what, path, strerror(errno));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value map(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  char path[4096];
  size_t len;
  double bytesD;
  bool create;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok ||
      napi_get_value_double(env, argv[1], &bytesD) != napi_ok || bytesD <= 0 ||
      napi_get_value_bool(env, argv[2], &create) != napi_ok) {
    napi_throw_type_error(env, NULL, "paralab_shm.map(path: string, bytes: number > 0, create: boolean)");
    return NULL;
  }
  size_t bytes = (size_t)bytesD;
  int fd = open(path, create ? (O_RDWR | O_CREAT | O_EXCL) : O_RDWR, 0600);
  if (fd < 0) return throw_errno(env, "map/open", path);
  struct stat st;
  if (create ? ftruncate(fd, (off_t)bytes) != 0 : fstat(fd, &st) != 0) {
    close(fd);
    return throw_errno(env, "map/size", path);
  }
  if (!create && (size_t)st.st_size < bytes) {
    close(fd);
    errno = EINVAL;
    return throw_errno(env, "map (file shorter than the segment: host and rank disagree on its layout)", path);
  }
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return throw_errno(env, "map/mmap", path);
  mapping *m = malloc(sizeof *m);
  m->addr = p;
  m->bytes = bytes;
  m->mapped = 1;
  napi_value ab;
  napi_status s = napi_create_external_arraybuffer(env, p, bytes, release, m, &ab);
  if (s != napi_ok) {
    munmap(p, bytes);
    free(m);
    napi_throw_error(env, NULL, "paralab_shm.map: this runtime forbids external ArrayBuffers (V8 sandbox); use a socket transport");
    return NULL;
  }
  napi_wrap(env, ab, m, NULL, NULL, NULL);
  return ab;
}

static napi_value unmap(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  mapping *m = NULL;
  if (napi_unwrap(env, argv[0], (void **)&m) != napi_ok || !m) {
    napi_throw_type_error(env, NULL, "paralab_shm.unmap: not a buffer returned by map()");
    return NULL;
  }
  if (m->mapped) {
    napi_detach_arraybuffer(env, argv[0]);
    munmap(m->addr, m->bytes);
    m->mapped = 0;
  }
  return NULL;
}

static napi_value external_buffers(napi_env env, napi_callback_info info) {
  (void)info;
  static char probe[16];
  napi_value ab, out;
  napi_status s = napi_create_external_arraybuffer(env, probe, sizeof probe, NULL, NULL, &ab);
  napi_get_boolean(env, s == napi_ok, &out);
  return out;
}

static int32_t *word(napi_env env, napi_value ab, napi_value off) {
  void *data;
  size_t len;
  double o;
  if (napi_get_arraybuffer_info(env, ab, &data, &len) != napi_ok || !data) return NULL;
  if (napi_get_value_double(env, off, &o) != napi_ok) return NULL;
  if (o < 0 || (size_t)o + 4 > len || ((size_t)o & 3) != 0) return NULL;
  return (int32_t *)((char *)data + (size_t)o);
}

/* The arguments of both waits: (ab, byteOffset, expected, timeoutMs). Throws and returns false when malformed. */
typedef struct {
  int32_t *w;
  int32_t expected;
  struct timespec ts;
} wait_args;

static bool parse_wait(napi_env env, napi_value *argv, const char *name, wait_args *out) {
  double ms;
  out->w = word(env, argv[0], argv[1]);
  if (!out->w || napi_get_value_int32(env, argv[2], &out->expected) != napi_ok || napi_get_value_double(env, argv[3], &ms) != napi_ok) {
    char msg[160];
    snprintf(msg, sizeof msg, "paralab_shm.%s(ab, byteOffset: 4-aligned in range, expected: int32, timeoutMs: number)", name);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  if (ms < 0) ms = 0;
  out->ts.tv_sec = (time_t)(ms / 1000);
  out->ts.tv_nsec = (long)((ms - (double)out->ts.tv_sec * 1000) * 1e6);
  return true;
}

/* 0 woken (or interrupted), 1 value differed, 2 timed out */
static int do_wait(wait_args *a) {
  long r = syscall(SYS_futex, a->w, FUTEX_WAIT, a->expected, &a->ts, NULL, 0);
  return r == 0 || errno == EINTR ? 0 : errno == ETIMEDOUT ? 2 : 1;
}

static napi_value futex_wait(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv)) return NULL;
  wait_args a;
  if (!parse_wait(env, argv, "futexWait", &a)) return NULL;
  napi_value out;
  CHECK(napi_create_int32(env, do_wait(&a), &out));
  return out;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep; /* the ArrayBuffer stays mapped while a pool thread sleeps on it */
  wait_args args;
  int result;
} async_wait;

static void async_wait_run(napi_env env, void *data) {
  (void)env;
  async_wait *a = data;
  a->result = do_wait(&a->args);
}

static void async_wait_done(napi_env env, napi_status status, void *data) {
  async_wait *a = data;
  napi_value out;
  napi_create_int32(env, status == napi_ok ? a->result : 0, &out);
  napi_resolve_deferred(env, a->deferred, out);
  napi_delete_reference(env, a->keep);
  napi_delete_async_work(env, a->work);
  free(a);
}

static napi_value futex_wait_async(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv)) return NULL;
  wait_args w;
  if (!parse_wait(env, argv, "futexWaitAsync", &w)) return NULL;
  async_wait *a = calloc(1, sizeof *a);
  a->args = w;
  napi_value promise, name;
  CHECK(napi_create_promise(env, &a->deferred, &promise));
  CHECK(napi_create_reference(env, argv[0], 1, &a->keep));
  CHECK(napi_create_string_utf8(env, "paralab_shm.futexWaitAsync", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, async_wait_run, async_wait_done, a, &a->work));
  CHECK(napi_queue_async_work(env, a->work));
  return promise;
}

static napi_value futex_wake(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  int32_t *w = word(env, argv[0], argv[1]);
  int32_t count;
  if (!w || napi_get_value_int32(env, argv[2], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "paralab_shm.futexWake(ab, byteOffset: 4-aligned in range, count: int32)");
    return NULL;
  }
  long r = syscall(SYS_futex, w, FUTEX_WAKE, count, NULL, NULL, 0);
  napi_value out;
  CHECK(napi_create_int32(env, (int32_t)(r < 0 ? 0 : r), &out));
  return out;
}

static float empty_f32[1];

/* The floats of a Float32Array (a dummy pointer when it is empty); NULL if v is not one. */
static float *f32(napi_env env, napi_value v, size_t *n) {
  napi_typedarray_type t;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, n, &data, NULL, NULL) != napi_ok || t != napi_float32_array) return NULL;
  return *n == 0 || !data ? empty_f32 : (float *)data;
}

static void add2(float *restrict d, const float *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] += s[i];
}

static void sum2(float *restrict d, const float *restrict a, const float *restrict b, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = a[i] + b[i];
}

static napi_value add_into(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  size_t n, m;
  float *dst = f32(env, argv[0], &n);
  float *src = f32(env, argv[1], &m);
  if (!dst || !src || m < n) {
    napi_throw_type_error(env, NULL, "paralab_shm.addInto(dst: Float32Array, src: Float32Array at least as long)");
    return NULL;
  }
  add2(dst, src, n);
  return NULL;
}

#define MAX_SRCS 64
#define BLOCK 4096 /* floats: 16 KiB, so a block's partial sum stays in L1 */

static napi_value reduce_into(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  size_t n, n2 = 0;
  float *dst = f32(env, argv[0], &n);
  uint32_t k;
  if (!dst || napi_get_array_length(env, argv[1], &k) != napi_ok || k == 0 || k > MAX_SRCS) {
    napi_throw_type_error(env, NULL, "paralab_shm.reduceInto(dst: Float32Array, srcs: Float32Array[1..64], dst2?: Float32Array)");
    return NULL;
  }
  napi_valuetype t2;
  napi_typeof(env, argv[2], &t2);
  float *dst2 = t2 == napi_undefined ? NULL : f32(env, argv[2], &n2);
  if (t2 != napi_undefined && (!dst2 || n2 < n)) {
    napi_throw_type_error(env, NULL, "paralab_shm.reduceInto: dst2 must be a Float32Array at least as long as dst");
    return NULL;
  }
  const float *src[MAX_SRCS];
  for (uint32_t r = 0; r < k; r++) {
    napi_value e;
    size_t m;
    CHECK(napi_get_element(env, argv[1], r, &e));
    src[r] = f32(env, e, &m);
    if (!src[r] || m < n) {
      napi_throw_type_error(env, NULL, "paralab_shm.reduceInto: every source must be a Float32Array at least as long as dst");
      return NULL;
    }
  }
  for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
    size_t len = n - i0 < BLOCK ? n - i0 : BLOCK;
    float *d = dst + i0;
    if (k == 1) memcpy(d, src[0] + i0, len * 4);
    else sum2(d, src[0] + i0, src[1] + i0, len);
    for (uint32_t r = 2; r < k; r++) add2(d, src[r] + i0, len);
    if (dst2) memcpy(dst2 + i0, d, len * 4);
  }
  return NULL;
}

static napi_value copy(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  void *d, *s;
  size_t dn, sn;
  napi_typedarray_type t;
  size_t len;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[0], &t, &len, &d, &ab, &off) != napi_ok) {
    napi_throw_type_error(env, NULL, "paralab_shm.copy(dst: TypedArray, src: TypedArray)");
    return NULL;
  }
  static const size_t width[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 2};
  dn = len * width[t];
  if (napi_get_typedarray_info(env, argv[1], &t, &len, &s, &ab, &off) != napi_ok) {
    napi_throw_type_error(env, NULL, "paralab_shm.copy(dst: TypedArray, src: TypedArray)");
    return NULL;
  }
  sn = len * width[t];
  if (dn && sn) memmove(d, s, dn < sn ? dn : sn);
  return NULL;
}

static napi_value yield_cpu(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  sched_yield();
  return NULL;
}

static napi_value pin_process(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  uint32_t k;
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  if (!is_array || napi_get_array_length(env, argv[0], &k) != napi_ok || k == 0) {
    napi_throw_type_error(env, NULL, "paralab_shm.pinProcess(cpus: number[] (non-empty))");
    return NULL;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < k; i++) {
    napi_value e;
    int32_t cpu;
    CHECK(napi_get_element(env, argv[0], i, &e));
    if (napi_get_value_int32(env, e, &cpu) != napi_ok || cpu < 0 || cpu >= CPU_SETSIZE) {
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
  napi_value out;
  CHECK(napi_create_int32(env, pinned, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"map", NULL, map, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmap", NULL, unmap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"externalBuffers", NULL, external_buffers, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futexWait", NULL, futex_wait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futexWaitAsync", NULL, futex_wait_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futexWake", NULL, futex_wake, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addInto", NULL, add_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reduceInto", NULL, reduce_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copy", NULL, copy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"yieldCpu", NULL, yield_cpu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pinProcess", NULL, pin_process, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
