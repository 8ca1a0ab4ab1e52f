/* SPDX-License-Identifier: MIT */
/* cmdq internals shared by its own sources; not for other folders. */
#ifndef SMMU_OFFLOAD_CMDQ_I_H
#define SMMU_OFFLOAD_CMDQ_I_H

#include "cmdq/cmdq.h"

/*
 * cmdq_info_unvalidated() - what cmdq_decode() says of @c (already in
 * struct cmdq_cmd form), except that @ret->cerror is left CMDQ_CERROR_NONE
 * without validating: for cmdq_coalesce(), whose callers did not decode.
 */
void cmdq_info_unvalidated(const struct cmdq_cmd *c, struct cmdq_info *ret);

#endif
