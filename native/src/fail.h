/* How the container-side child reports a failure to the helper before exec: one line on the error pipe,
 * prefixed by the exit code the helper should report (125 set-up, 126 not executable, 127 not found). */
#ifndef KILN_FAIL_H
#define KILN_FAIL_H
#define EXIT_SETUP 125
#define EXIT_NOT_EXECUTABLE 126
#define EXIT_NOT_FOUND 127

extern int child_error_fd;
__attribute__((noreturn, format(printf, 2, 3))) void child_fail(int code, const char *fmt, ...);
#endif
