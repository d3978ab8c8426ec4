#define _GNU_SOURCE
#include "tty.h"
#include "fail.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

void tty_child_setup(int sock, const struct winsize *ws, bool have_ws, uid_t uid) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) child_fail(EXIT_SETUP, "open /dev/ptmx: %s", strerror(errno));
  if (unlockpt(master) < 0) child_fail(EXIT_SETUP, "unlockpt: %s", strerror(errno));
  char name[64];
  if (ptsname_r(master, name, sizeof name) != 0) child_fail(EXIT_SETUP, "ptsname: %s", strerror(errno));
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) child_fail(EXIT_SETUP, "open %s: %s", name, strerror(errno));
  if (have_ws) ioctl(slave, TIOCSWINSZ, ws);
  if (fchown(slave, uid, (gid_t)-1) < 0) child_fail(EXIT_SETUP, "chown %s: %s", name, strerror(errno));
  if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0) child_fail(EXIT_SETUP, "bind /dev/console: %s", strerror(errno));

  char byte = 0;
  struct iovec iov = { &byte, 1 };
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &master, sizeof master);
  if (sendmsg(sock, &msg, 0) < 0) child_fail(EXIT_SETUP, "send pty to helper: %s", strerror(errno));
  close(master);

  if (ioctl(slave, TIOCSCTTY, 0) < 0) child_fail(EXIT_SETUP, "TIOCSCTTY: %s", strerror(errno));
  for (int fd = 0; fd < 3; fd++)
    if (dup2(slave, fd) < 0) child_fail(EXIT_SETUP, "dup2 pty: %s", strerror(errno));
  if (slave > 2) close(slave);
}

int tty_recv_master(int sock) {
  char byte;
  struct iovec iov = { &byte, 1 };
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static struct termios saved;
static int saved_fd = -1;

void tty_restore_outer(void) {
  if (saved_fd >= 0) tcsetattr(saved_fd, TCSADRAIN, &saved);
  saved_fd = -1;
}

void tty_make_outer_raw(int fd) {
  if (!isatty(fd) || tcgetattr(fd, &saved) < 0) return;
  struct termios raw = saved;
  cfmakeraw(&raw);
  if (tcsetattr(fd, TCSADRAIN, &raw) == 0) {
    saved_fd = fd;
    atexit(tty_restore_outer);
  }
}

bool tty_outer_size(struct winsize *ws) {
  return ioctl(0, TIOCGWINSZ, ws) == 0 || ioctl(1, TIOCGWINSZ, ws) == 0;
}
