/* The driver table, in probing order: the first driver whose match() says
 * yes binds the card. Cheap, specific probes first. */
#include "config.h"

#include <stddef.h>

#include "token/token.h"

const struct kyso_driver *const kyso_drivers[] = {
	&kyso_driver_piv,
	NULL,
};
