/* SPDX-License-Identifier: MIT */
/* Opcode table, byte order and classification. */
#include "cmdq/cmdq.h"

#include <endian.h>
#include <string.h>

struct cmdq_cmd cmdq_cmd_from_le(const void *le)
{
	struct cmdq_cmd c;

	memcpy(&c, le, sizeof(c));
	c.d[0] = le64toh(c.d[0]);
	c.d[1] = le64toh(c.d[1]);
	return c;
}

void cmdq_cmd_to_le(const struct cmdq_cmd *c, void *le)
{
	uint64_t w[2] = { htole64(c->d[0]), htole64(c->d[1]) };

	memcpy(le, w, sizeof(w));
}
