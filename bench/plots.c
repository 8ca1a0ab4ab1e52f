/* SPDX-License-Identifier: MIT */
/*
 * smmu-bench --plot DIR: the latency CDF per mode and a per-command cost
 * bar chart, as gnuplot data, a script and (with gnuplot) SVGs.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/smmu-bench_i.h"

/* Is @prog an executable somewhere in $PATH? */
static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);

		if (len && len + strlen(prog) + 2 < sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path,
				 prog);
			if (!access(buf, X_OK))
				return true;
		}
		path = end ? end + 1 : NULL;
	}
	return false;
}

/* Create @dir/@name for writing. Return: the stream, or NULL (errno). */
static FILE *plot_open(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return fopen(path, "we");
}

/* latency-cdf.dat: one block per mode, titled by the mode's name. */
static void write_cdf(FILE *f, const struct result *res)
{
	for (int m = 0; m < M_COUNT; m++) {
		const struct core_hist *h = &res[m].c.lat;
		uint64_t seen = 0;

		if (!res[m].ran || res[m].err)
			continue;
		/* The block's first line is its title (columnheader). */
		fprintf(f, "%s\n", sb_mode_names[m]);
		for (unsigned int i = 0; i < CORE_HIST_BUCKETS; i++) {
			if (!h->b[i])
				continue;
			seen += h->b[i];
			fprintf(f, "%.3f %.6f\n",
				(double)core_hist_upper(i) / 1000.0,
				(double)seen / (double)h->count);
		}
		fprintf(f, "\n\n");
	}
}

/* per-cmd.dat: a line per mode that ran. */
static void write_per_cmd(FILE *f, const struct opts *o,
			  const struct result *res)
{
	fprintf(f,
		"# mode guest_blocked_ns_per_cmd held_ns_per_cmd "
		"sync_wait_ns_per_cmd host_syncs_per_1000 ioctls_per_1000\n");
	for (int m = 0; m < M_COUNT; m++)
		if (sb_mode_ok(res, m))
			fprintf(f, "%s %.2f %.2f %.2f %.2f %.2f\n",
				sb_mode_names[m],
				sb_metric(o, &res[m],
					  "guest_blocked_ns_per_cmd"),
				sb_metric(o, &res[m], "handler_ns_per_cmd"),
				sb_metric(o, &res[m], "sync_wait_ns_per_cmd"),
				sb_metric(o, &res[m],
					  "host_syncs_per_1000_cmds"),
				sb_metric(o, &res[m], "ioctls_per_1000_cmds"));
}

/* plots.gp: both charts from the two data files. */
static void write_script(FILE *f, const char *dir, const struct opts *o,
			 const struct wl *w)
{
	fprintf(f,
		"set terminal svg size 800,500 dynamic\n"
		"set output '%s/latency-cdf.svg'\n"
		"set title 'guest CMD_SYNC latency CDF (%s, %u VMs, %u host "
		"SMMUs)' noenhanced\n"
		"set xlabel 'latency, us (log)'\nset ylabel 'fraction'\n"
		"set logscale x\nset key bottom right\nset grid\n"
		"plot for [i=0:*] '%s/latency-cdf.dat' index i using 1:2 "
		"with steps lw 2 title columnheader(1)\n",
		dir, w->name, o->vms, o->hsmmus, dir);
	fprintf(f,
		"reset\nset terminal svg size 800,500 dynamic\n"
		"set output '%s/per-cmd.svg'\n"
		"set title 'per guest command (%s, %s)' noenhanced\n"
		"set style data histograms\nset style fill solid 0.8\n"
		"set logscale y\nset ylabel 'ns per guest command (log)'\n"
		"set grid ytics\n"
		"plot '%s/per-cmd.dat' using 2:xtic(1) title 'guest blocked "
		"(PROD write to SYNC passed)', '' using 3 title 'vCPU thread "
		"held (secondary)'\n",
		dir, w->name,
		sb_wall_fair(o) ? "wall clock" :
				  "wall clock incl. sim sleep overshoot",
		dir);
}

/* Latency CDF per mode and a per-command cost bar chart, as SVG. */
int sb_write_plots(const char *dir, const struct opts *o, const struct wl *w,
		   const struct result *res)
{
	char cmd[4096];
	FILE *f;
	int rc;

	if (!(f = plot_open(dir, "latency-cdf.dat")))
		return -errno;
	write_cdf(f, res);
	fclose(f);
	if (!(f = plot_open(dir, "per-cmd.dat")))
		return -errno;
	write_per_cmd(f, o, res);
	fclose(f);
	if (!(f = plot_open(dir, "plots.gp")))
		return -errno;
	write_script(f, dir, o, w);
	fclose(f);
	if (!in_path("gnuplot")) {
		printf("plots: gnuplot not installed: wrote the data and "
		       "%s/plots.gp only (apt-get install gnuplot-nox)\n",
		       dir);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "gnuplot '%s/plots.gp'", dir);
	rc = system(cmd);
	if (rc) {
		printf("plots: gnuplot failed (status %d)\n", rc);
		return -EIO;
	}
	printf("plots: %s/latency-cdf.svg %s/per-cmd.svg\n", dir, dir);
	return 0;
}
