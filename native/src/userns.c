#define _GNU_SOURCE
#include "userns.h"
#include <stdio.h>

bool in_user_namespace(void) {
  static int cached = -1;
  if (cached >= 0) return cached;
  FILE *f = fopen("/proc/self/uid_map", "re");
  unsigned long inner = 1, outer = 1, count = 0;
  if (f) {
    if (fscanf(f, "%lu %lu %lu", &inner, &outer, &count) != 3) count = 0;
    fclose(f);
  }
  cached = f && !(inner == 0 && outer == 0 && count == 4294967295UL);
  return cached;
}
