/* Minimal rtnetlink requests (no libmnl): build a message with nested attributes, send it, read the ACK. */
#define _GNU_SOURCE
#include "netlink.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int nl_open(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void nl_init(struct nl_msg *m, unsigned short type, unsigned short flags, const void *hdr, size_t hdrlen) {
  memset(m, 0, sizeof *m);
  struct nlmsghdr *n = (struct nlmsghdr *)m->buf;
  n->nlmsg_type = type;
  n->nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
  n->nlmsg_len = (unsigned)NLMSG_LENGTH(hdrlen);
  memcpy(NLMSG_DATA(n), hdr, hdrlen);
}

static struct nlmsghdr *hdr_of(struct nl_msg *m) { return (struct nlmsghdr *)m->buf; }

void *nl_put(struct nl_msg *m, unsigned short type, const void *data, size_t len) {
  struct nlmsghdr *n = hdr_of(m);
  size_t at = NLMSG_ALIGN(n->nlmsg_len);
  if (at + RTA_SPACE(len) > sizeof m->buf) { m->overflow = 1; return NULL; }
  struct rtattr *a = (struct rtattr *)(m->buf + at);
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  n->nlmsg_len = (unsigned)(at + RTA_SPACE(len));
  return RTA_DATA(a);
}

void nl_put_str(struct nl_msg *m, unsigned short type, const char *s) { nl_put(m, type, s, strlen(s) + 1); }
void nl_put_u32(struct nl_msg *m, unsigned short type, unsigned v) { nl_put(m, type, &v, sizeof v); }

size_t nl_nest_begin(struct nl_msg *m, unsigned short type) {
  size_t at = NLMSG_ALIGN(hdr_of(m)->nlmsg_len);
  nl_put(m, type, NULL, 0);
  return at;
}

void nl_nest_end(struct nl_msg *m, size_t at) {
  if (m->overflow) return;
  struct rtattr *a = (struct rtattr *)(m->buf + at);
  a->rta_len = (unsigned short)(hdr_of(m)->nlmsg_len - at);
}

void nl_put_raw(struct nl_msg *m, const void *data, size_t len) {
  struct nlmsghdr *n = hdr_of(m);
  size_t at = NLMSG_ALIGN(n->nlmsg_len);
  if (at + NLMSG_ALIGN(len) > sizeof m->buf) { m->overflow = 1; return; }
  memcpy(m->buf + at, data, len);
  n->nlmsg_len = (unsigned)(at + NLMSG_ALIGN(len));
}

int nl_talk(int fd, struct nl_msg *m) {
  if (m->overflow) { errno = EMSGSIZE; return -1; }
  struct nlmsghdr *n = hdr_of(m);
  static unsigned seq;
  n->nlmsg_seq = ++seq;
  struct sockaddr_nl to = { .nl_family = AF_NETLINK };
  if (sendto(fd, n, n->nlmsg_len, 0, (struct sockaddr *)&to, sizeof to) < 0) return -1;
  char buf[8192];
  for (;;) {
    ssize_t len = recv(fd, buf, sizeof buf, 0);
    if (len < 0 && errno == EINTR) continue;
    if (len < 0) return -1;
    for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (unsigned)len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != n->nlmsg_seq) continue;
      if (r->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(r);
        if (e->error == 0) return 0;
        errno = -e->error;
        return -1;
      }
    }
  }
}
