/* A freestanding hello world for x86-64 Linux: it makes its own system calls instead of using libc, so
 * the static binary runs alone in an empty (scratch) image. */
static long syscall3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}

void _start(void) {
  static const char msg[] = "hello from a C program built by kiln, running from scratch\n";
  syscall3(1 /* write */, 1, (long)msg, sizeof msg - 1);
  syscall3(60 /* exit */, 0, 0, 0);
}
