/* The driver table, in probing order: the first driver whose match() says
 * yes binds the card. Cheap, specific probes first. */
#include "config.h"

#include <stddef.h>

#include "token/token.h"

const struct kyso_driver *const kyso_drivers[] = {
	/* ATR first, then one GET DATA only on a matching ATR: free for
	 * every other card, and spares the token a foreign SELECT. */
	&kyso_driver_epass2003,
	&kyso_driver_piv,
	NULL,
};
