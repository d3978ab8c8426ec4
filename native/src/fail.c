#include "fail.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int child_error_fd = -1;

void child_fail(int code, const char *fmt, ...) {
  char msg[2048];
  int n = snprintf(msg, sizeof msg, "%d ", code);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  if (child_error_fd < 0 || write(child_error_fd, msg, strlen(msg)) < 0) fprintf(stderr, "kiln-sandbox: %s\n", msg + n);
  _exit(code);
}
