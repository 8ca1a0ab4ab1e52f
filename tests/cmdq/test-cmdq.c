/* SPDX-License-Identifier: MIT */
/* cmdq: byte order of the 16-byte entry. */
#include "cmdq/cmdq.h"
#include "tests/harness.h"

TEST(cmd_le_roundtrip)
{
	/* Bytes as the guest writes them to its queue: little-endian. */
	const uint8_t le[16] = {
		0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
		0x01, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00
	};
	struct cmdq_cmd c = cmdq_cmd_from_le(le);
	uint8_t out[16];

	ASSERT_EQ(c.d[0], 0x0001000000000012ull);
	ASSERT_EQ(c.d[1], 0x0000000100001001ull);
	ASSERT_EQ(cmdq_cmd_opcode(&c), CMDQ_OP_TLBI_NH_VA);
	cmdq_cmd_to_le(&c, out);
	ASSERT_EQ(memcmp(out, le, sizeof(le)), 0);
}

TEST_HARNESS_MAIN
