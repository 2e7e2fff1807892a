/* Helpers shared by the C tests of libdbrt: checks that print the failing call, its status and
 * dbrt_last_error(), and a reader for the tab-separated pairs files run.sh writes. */
#ifndef DBRT_TEST_H
#define DBRT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbrt.h"

#define CHECK(call)                                                                        \
  do {                                                                                     \
    dbrt_status s_ = (call);                                                               \
    if (s_ != DBRT_OK) {                                                                   \
      fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call,            \
              dbrt_status_str(s_), dbrt_last_error());                                     \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

#define EXPECT_STATUS(want, call)                                                          \
  do {                                                                                     \
    dbrt_status s_ = (call);                                                               \
    if (s_ != (want)) {                                                                    \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__,     \
              #call, dbrt_status_str(s_), dbrt_status_str(want), dbrt_last_error());       \
      exit(1);                                                                             \
    }                                                                                      \
    checks_passed++;                                                                       \
  } while (0)

#define EXPECT(cond)                                                                       \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                  \
      exit(1);                                                                             \
    }                                                                                      \
    checks_passed++;                                                                       \
  } while (0)

static int checks_passed = 0;

typedef struct {
  char *premise;
  char *hypothesis;
} pair_t;

/* Reads "premise<TAB>hypothesis" lines; the strings live until the process ends. */
static inline pair_t *read_pairs(const char *path, size_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(1);
  }
  size_t cap = 64, n = 0;
  pair_t *pairs = malloc(cap * sizeof *pairs);
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t len;
  while ((len = getline(&line, &line_cap, f)) > 0) {
    if (line[len - 1] == '\n') line[--len] = 0;
    char *tab = strchr(line, '\t');
    if (!tab) {
      fprintf(stderr, "%s: line %zu has no tab\n", path, n + 1);
      exit(1);
    }
    *tab = 0;
    if (n == cap) pairs = realloc(pairs, (cap *= 2) * sizeof *pairs);
    pairs[n].premise = strdup(line);
    pairs[n].hypothesis = strdup(tab + 1);
    n++;
  }
  free(line);
  fclose(f);
  *count = n;
  return pairs;
}

static inline void free_pairs(pair_t *pairs, size_t count) {
  for (size_t i = 0; i < count; i++) {
    free(pairs[i].premise);
    free(pairs[i].hypothesis);
  }
  free(pairs);
}

#endif
