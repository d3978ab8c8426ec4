/* Asks the SSH agent at $SSH_AUTH_SOCK (or argv[1]) for its identities (SSH2_AGENTC_REQUEST_IDENTITIES)
 * and prints each key's comment, one per line. Built statically by the ssh tests, run inside a RUN. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int read_full(int fd, unsigned char *buf, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}
static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : getenv("SSH_AUTH_SOCK");
  if (!path) { fprintf(stderr, "no SSH_AUTH_SOCK\n"); return 2; }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); return 3; }
  const unsigned char req[5] = { 0, 0, 0, 1, 11 };
  if (write(fd, req, 5) != 5) { perror("write"); return 4; }
  unsigned char hdr[4];
  if (read_full(fd, hdr, 4)) return 5;
  uint32_t len = be32(hdr);
  unsigned char *msg = malloc(len);
  if (read_full(fd, msg, len) || msg[0] != 12) { fprintf(stderr, "unexpected agent answer\n"); return 6; }
  uint32_t n = be32(msg + 1), at = 5;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t blob = be32(msg + at); at += 4 + blob;
    uint32_t clen = be32(msg + at); at += 4;
    printf("%.*s\n", (int)clen, (const char *)msg + at);
    at += clen;
  }
  return 0;
}
