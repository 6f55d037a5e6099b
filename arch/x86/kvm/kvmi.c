// SPDX-License-Identifier: GPL-2.0
/*
 * KVM introspection: the x86 part.
 */

#include "../../../virt/kvm/introspection/kvmi_int.h"

void kvmi_arch_init_features(struct kvmi_features *feat)
{
	/* Single-stepping is not implemented yet. */
	feat->singlestep = 0;
}
