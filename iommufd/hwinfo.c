/* SPDX-License-Identifier: MIT */
/* Host SMMU discovery in sysfs and IDR decoding (facts doc 2.2). */
#include "iommufd/iofd.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDR0_ATS (1u << 10)
#define IDR0_ASID16 (1u << 12)
#define IDR1_SIDSIZE(x) ((x)&0x3fu)
#define IDR1_SSIDSIZE(x) (((x) >> 6) & 0x1fu)
#define IDR3_RIL (1u << 10)
#define IDR5_DS (1u << 3)
#define IDR5_GRAN4K (1u << 4)
#define IDR5_GRAN16K (1u << 5)
#define IDR5_GRAN64K (1u << 6)

int iofd_caps_from_idr(const uint32_t idr[6], struct cmdq_caps *ret_caps)
{
	struct cmdq_caps c = { 0 };

	c.asid_bits = idr[0] & IDR0_ASID16 ? 16 : 8;
	c.ats = idr[0] & IDR0_ATS;
	c.ssid_bits = (uint8_t)IDR1_SSIDSIZE(idr[1]);
	c.sid_bits = (uint8_t)IDR1_SIDSIZE(idr[1]);
	c.range_inv = idr[3] & IDR3_RIL;
	c.ds = idr[5] & IDR5_DS;
	c.gran4k = idr[5] & IDR5_GRAN4K;
	c.gran16k = idr[5] & IDR5_GRAN16K;
	c.gran64k = idr[5] & IDR5_GRAN64K;
	if (!c.gran4k && !c.gran16k && !c.gran64k)
		return -EOPNOTSUPP;
	*ret_caps = c;
	return 0;
}

/* Is @root/@name an SMMUv3? See iofd_discover(). */
static bool hwinfo_is_smmuv3(const char *root, const char *name)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t len;

	if (snprintf(path, sizeof(path), "%s/%s/device/driver", root, name) >=
	    (int)sizeof(path))
		return false;
	len = readlink(path, link, sizeof(link) - 1);
	if (len < 0)
		return !strncmp(name, "smmu3.", 6);
	link[len] = '\0';
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	return !strcmp(base, "arm-smmu-v3");
}

static int hwinfo_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int iofd_discover(const char *sysfs_root, char (*names)[IOFD_NAME_MAX],
		  size_t max, size_t *ret_n)
{
	const char *root = sysfs_root ? sysfs_root : "/sys/class/iommu";
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	d = opendir(root);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' ||
		    strlen(de->d_name) >= IOFD_NAME_MAX ||
		    !hwinfo_is_smmuv3(root, de->d_name))
			continue;
		if (n < max)
			strcpy(names[n], de->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n < max ? n : max, IOFD_NAME_MAX, hwinfo_cmp);
	*ret_n = n;
	return 0;
}
