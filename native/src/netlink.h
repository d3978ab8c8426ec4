/* A few rtnetlink helpers: enough to create a veth pair, set links up, add an address and a route. */
#ifndef KILN_NETLINK_H
#define KILN_NETLINK_H
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stddef.h>

struct nl_msg {
  char buf[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
  int overflow;
};

/* A NETLINK_ROUTE socket, or -1 with errno. */
int nl_open(void);
/* Starts a request of the given type (RTM_*) with its fixed header (ifinfomsg, ifaddrmsg, rtmsg...). */
void nl_init(struct nl_msg *m, unsigned short type, unsigned short flags, const void *hdr, size_t hdrlen);
void *nl_put(struct nl_msg *m, unsigned short type, const void *data, size_t len);
void nl_put_str(struct nl_msg *m, unsigned short type, const char *s);
void nl_put_u32(struct nl_msg *m, unsigned short type, unsigned v);
/* Raw bytes at the current end (the ifinfomsg that starts a veth peer's attributes). */
void nl_put_raw(struct nl_msg *m, const void *data, size_t len);
size_t nl_nest_begin(struct nl_msg *m, unsigned short type);
void nl_nest_end(struct nl_msg *m, size_t at);
/* Sends the request and waits for its ACK: 0, or -1 with errno set from the kernel's answer. */
int nl_talk(int fd, struct nl_msg *m);
#endif
