/* Executes the container's command as the calling process, Docker-style: bare names are looked up in the
 * container's PATH (from its env), and failures exit 127 (not found) or 126 (cannot execute). */
#ifndef KILN_EXEC_H
#define KILN_EXEC_H
#include "spec.h"
__attribute__((noreturn)) void exec_command(const struct spec *s);
#endif
