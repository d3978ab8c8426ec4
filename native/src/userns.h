/* Rootless mode: the helper runs inside a user namespace made by native/build/kiln-userns. */
#ifndef KILN_USERNS_H
#define KILN_USERNS_H
#include <stdbool.h>

/* True when this process is in a user namespace other than the initial one (uid_map is not the identity
 * map of all ids). Then overlay needs "userxattr", device nodes cannot be made and cgroups are not ours. */
bool in_user_namespace(void);
#endif
