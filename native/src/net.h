/* Network set-up inside a fresh network namespace: only loopback, brought up. */
#ifndef KILN_NET_H
#define KILN_NET_H
void net_loopback_up(void);
#endif
