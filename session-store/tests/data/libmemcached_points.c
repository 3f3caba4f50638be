/* Prints tests/data/libmemcached_points.txt: how many continuum points libmemcached gives each
 * server with MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, read from the library's own continuum.
 *
 *   apt-get install libmemcached-dev    # Debian 12: libmemcached 1.1.4
 *   cc -O2 -o /tmp/libmemcached_points tests/data/libmemcached_points.c -lmemcached
 *   /tmp/libmemcached_points > tests/data/libmemcached_points.txt
 *
 * One line per server list: its weights, "=", each server's number of points. "w*k" stands for
 * k copies of w. The lists: every count 1-100 with equal weights (several weights; above 100
 * servers libmemcached 1.1.4 aborts on an assertion in update_continuum), then 600
 * lists of 1-64 servers with weights drawn from ranges small and large (0 included; weights
 * up to 2^32-1, libmemcached's uint32_t). Deterministic (xorshift64 with a fixed seed). */
#include <libmemcached/memcached.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Private to libmemcached (src/libmemcached/continuum.hpp); memcached_st points at an array. */
struct memcached_continuum_item_st {
  uint32_t index;
  uint32_t value;
};

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

/* Prints v*k runs of `xs`. */
static void runs(const uint32_t *xs, unsigned n) {
  for (unsigned i = 0; i < n;) {
    unsigned j = i;
    while (j < n && xs[j] == xs[i]) j++;
    printf(i ? " " : "");
    if (j - i > 1) printf("%u*%u", xs[i], j - i);
    else printf("%u", xs[i]);
    i = j;
  }
}

static void one(const uint32_t *weights, unsigned n) {
  memcached_st *m = memcached_create(NULL);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
  for (unsigned i = 0; i < n; i++) {
    char host[32];
    snprintf(host, sizeof host, "10.0.%u.%u", i / 256, i % 256);
    if (memcached_server_add_with_weight(m, host, 11211, weights[i]) != MEMCACHED_SUCCESS) {
      fprintf(stderr, "server_add failed\n");
      exit(1);
    }
  }
  uint32_t counts[100] = {0};
  const struct memcached_continuum_item_st *c =
      (const struct memcached_continuum_item_st *) m->ketama.continuum;
  for (uint32_t i = 0; i < m->ketama.continuum_points_counter; i++) counts[c[i].index]++;
  runs(weights, n);
  printf(" = ");
  runs(counts, n);
  printf("\n");
  memcached_free(m);
}

int main(void) {
  static const uint32_t equal[] = {0, 1, 2, 3, 7, 100, 65535, 4294967295u};
  uint32_t w[100];
  for (unsigned e = 0; e < sizeof equal / sizeof *equal; e++) {
    for (unsigned n = 1; n <= 100; n++) {
      for (unsigned i = 0; i < n; i++) w[i] = equal[e];
      one(w, n);
    }
  }
  static const uint64_t ranges[] = {2, 4, 11, 101, 1001, 65536, 4294967296u};
  for (unsigned k = 0; k < 600; k++) {
    unsigned n = 1 + (unsigned) (next() % 64);
    uint64_t range = ranges[k % (sizeof ranges / sizeof *ranges)];
    for (unsigned i = 0; i < n; i++) w[i] = (uint32_t) (next() % range);
    one(w, n);
  }
  return 0;
}
