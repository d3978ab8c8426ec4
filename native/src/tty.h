/* Pseudo-terminal for `tty: true`: the pty lives in the container's own devpts; the helper relays it. */
#ifndef KILN_TTY_H
#define KILN_TTY_H
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/types.h>

/* Child side, after pivot_root: opens a pty, makes it the controlling terminal and stdio, bind-mounts it on
 * /dev/console and sends the master to the helper over sock. */
void tty_child_setup(int sock, const struct winsize *ws, bool have_ws, uid_t uid);
/* Helper side: receives the master fd (or -1). */
int tty_recv_master(int sock);
/* Raw mode on the outer terminal while relaying, restored by tty_restore_outer (also at exit). */
void tty_make_outer_raw(int fd);
void tty_restore_outer(void);
/* Copies the outer terminal's size (from stdin or stdout) to the master; false when neither is a tty. */
bool tty_outer_size(struct winsize *ws);
#endif
