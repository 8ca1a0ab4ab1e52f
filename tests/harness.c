/* SPDX-License-Identifier: MIT */
/*
 * Test runner for harness.h: fork per test, alarm as a timeout backstop,
 * TAP output.
 */
#include "tests/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

static struct t_case *t_head, **t_tail = &t_head;

sigjmp_buf t_abort_jmp;
int t_failed;
const char *t_skip_reason;
static bool t_in_test;
static int t_skip_pipe = -1;

void t_register(struct t_case *tc)
{
	/* Constructors run in source order: keep it. */
	*t_tail = tc;
	t_tail = &tc->next;
}

void t_report(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	t_failed = 1;
	fprintf(stderr, "# %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

_Noreturn void t_abort(void)
{
	t_failed = 1;
	if (t_in_test)
		siglongjmp(t_abort_jmp, 1);
	exit(T_EXIT_FAIL);
}

_Noreturn void t_skip(const char *reason)
{
	t_skip_reason = reason;
	if (t_in_test)
		siglongjmp(t_abort_jmp, 2);
	exit(T_EXIT_SKIP);
}

const char *t_errname(long long e)
{
	static char buf[32];
	const char *n;

	if (e >= 0 || e < -4095) {
		snprintf(buf, sizeof(buf), "%lld", e);
		return buf;
	}
	n = strerrorname_np((int)-e);
	return n ? n : "?";
}

double t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t t_seed(void)
{
	return t_seed_fresh();
}

uint64_t t_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Runs setup, body, teardown; returns an exit code. */
static int t_run_one(struct t_case *tc)
{
	void *volatile self = NULL; /* live across siglongjmp */
	int jumped;

	t_failed = 0;
	t_skip_reason = NULL;
	if (tc->self_size) {
		self = calloc(1, tc->self_size);
		if (!self) {
			fprintf(stderr, "# out of memory\n");
			return T_EXIT_FAIL;
		}
	}
	t_in_test = true;
	jumped = sigsetjmp(t_abort_jmp, 0);
	if (!jumped) {
		if (tc->setup)
			tc->setup(self);
		tc->run(self);
	}
	/* An ASSERT in teardown must not loop back into the teardown. */
	if (tc->teardown && !sigsetjmp(t_abort_jmp, 0))
		tc->teardown(self);
	t_in_test = false;
	free(self);
	if (t_skip_reason && !t_failed) {
		if (t_skip_pipe >= 0) {
			ssize_t r = write(t_skip_pipe, t_skip_reason,
					  strlen(t_skip_reason));
			(void)r;
		}
		return T_EXIT_SKIP;
	}
	return t_failed ? T_EXIT_FAIL : T_EXIT_PASS;
}

/*
 * T_XFAIL from meson.build: "name: why; name: why" (why optional). Takes
 * the next entry of *@s, trimmed, and moves *@s past it; false at the end.
 */
static bool t_xfail_next(const char **s, const char **name, int *nlen,
			 const char **why, int *wlen)
{
	const char *e, *colon;

	while (*s && (**s == ' ' || **s == ';'))
		(*s)++;
	if (!*s || !**s)
		return false;
	e = *s + strcspn(*s, ";");
	colon = memchr(*s, ':', (size_t)(e - *s));
	*name = *s;
	*nlen = (int)((colon ? colon : e) - *s);
	while (*nlen && (*name)[*nlen - 1] == ' ')
		(*nlen)--;
	*why = colon ? colon + 1 : e;
	while (*why < e && **why == ' ')
		(*why)++;
	*wlen = (int)(e - *why);
	*s = e;
	return true;
}

/* Copies @name's T_XFAIL reason into @why (size @n) if listed there. */
static void t_env_xfail(const char *name, char *why, size_t n)
{
	const char *s = getenv("T_XFAIL"), *nm, *w;
	int nl, wl;

	while (t_xfail_next(&s, &nm, &nl, &w, &wl)) {
		if ((size_t)nl != strlen(name) || strncmp(nm, name, (size_t)nl))
			continue;
		if (!wl) {
			w = "marked by T_XFAIL";
			wl = (int)strlen(w);
		}
		snprintf(why, n, "%.*s", wl, w);
	}
}

/* Every name in T_XFAIL must be a test here: a stale marker is an error. */
static int t_check_env_xfail(void)
{
	const char *s = getenv("T_XFAIL"), *nm, *w;
	int nl, wl, bad = 0;

	while (t_xfail_next(&s, &nm, &nl, &w, &wl)) {
		const struct t_case *tc;

		for (tc = t_head; tc; tc = tc->next)
			if (strlen(tc->name) == (size_t)nl &&
			    !strncmp(tc->name, nm, (size_t)nl))
				break;
		if (!tc) {
			fprintf(stderr, "# T_XFAIL names no test here: %.*s\n",
				nl, nm);
			bad = 1;
		}
	}
	return bad;
}

/*
 * One TAP line for a finished test; returns whether it counts as a
 * failure of the program. An expected failure (@xfail set) failing is
 * "not ok # TODO" (not a failure of the program); passing, it is
 * "ok # TODO" and a failure (remove the marker).
 */
static bool t_print_result(int idx, const struct t_case *tc, int code,
			   const char *reason, const char *xfail)
{
	if (code == T_EXIT_SKIP) {
		printf("ok %d %s # SKIP %s\n", idx, tc->name, reason);
		return false;
	}
	if (xfail && code == T_EXIT_PASS) {
		fprintf(stderr,
			"# %s: marked as an expected failure (%s) but passed: "
			"if the bug is fixed, remove the marker\n",
			tc->name, xfail);
		printf("ok %d %s # TODO unexpectedly passed, expected to fail: "
		       "%s\n",
		       idx, tc->name, xfail);
		return true;
	}
	if (xfail) {
		printf("not ok %d %s # TODO expected failure: %s\n", idx,
		       tc->name, xfail);
		return false;
	}
	if (code == T_EXIT_PASS) {
		printf("ok %d %s\n", idx, tc->name);
		return false;
	}
	printf("not ok %d %s\n", idx, tc->name);
	return true;
}

static bool t_selected(const struct t_case *tc, int argc, char **argv)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (strstr(tc->name, argv[i]))
			return true;
	return false;
}

int t_main(int argc, char **argv)
{
	bool nofork = getenv("T_NOFORK") != NULL;
	int n = 0, idx = 0, nfail = 0;
	struct t_case *tc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (t_check_env_xfail()) {
		printf("Bail out! T_XFAIL names a test that does not exist\n");
		return T_EXIT_FAIL;
	}
	for (tc = t_head; tc; tc = tc->next)
		n += t_selected(tc, argc, argv);
	printf("TAP version 13\n1..%d\n", n);

	for (tc = t_head; tc; tc = tc->next) {
		char reason[256] = "", xf[256] = "";
		int code, pfd[2] = { -1, -1 };

		if (!t_selected(tc, argc, argv))
			continue;
		if (tc->xfail)
			snprintf(xf, sizeof(xf), "%s", tc->xfail);
		else
			t_env_xfail(tc->name, xf, sizeof(xf));
		idx++;
		fflush(NULL);
		if (nofork) {
			code = t_run_one(tc);
			if (code == T_EXIT_SKIP && t_skip_reason)
				snprintf(reason, sizeof(reason), "%s",
					 t_skip_reason);
		} else {
			pid_t pid, w;
			int st;

			if (pipe2(pfd, O_CLOEXEC) < 0) {
				perror("pipe2");
				return T_EXIT_FAIL;
			}
			pid = fork();
			if (pid < 0) {
				perror("fork");
				return T_EXIT_FAIL;
			}
			if (pid == 0) {
				close(pfd[0]);
				t_skip_pipe = pfd[1];
				/* Default SIGALRM action kills the child. */
				alarm(tc->timeout_s);
				_exit(t_run_one(tc));
			}
			close(pfd[1]);
			do {
				w = waitpid(pid, &st, 0);
			} while (w < 0 && errno == EINTR);
			if (w < 0) {
				perror("waitpid");
				return T_EXIT_FAIL;
			}
			if (WIFEXITED(st)) {
				code = WEXITSTATUS(st);
				if (code == T_EXIT_SKIP) {
					ssize_t r = read(pfd[0], reason,
							 sizeof(reason) - 1);
					reason[r > 0 ? r : 0] = '\0';
				}
			} else {
				int sig = WTERMSIG(st);

				fprintf(stderr, "# %s: killed by signal %d%s\n",
					tc->name, sig,
					sig == SIGALRM ? " (timeout)" : "");
				code = T_EXIT_FAIL;
			}
			close(pfd[0]);
		}
		nfail += t_print_result(idx, tc, code, reason,
					xf[0] ? xf : NULL);
	}
	return nfail ? T_EXIT_FAIL : T_EXIT_PASS;
}

/*
 * Seeds (t_seed(), t_seed_fresh()): fresh from getrandom() on every run so
 * that CI explores new cases each time, printed so that a failure can be
 * replayed with SMMU_TEST_SEED. T_SEED, the variable's old name, is still
 * read. A malformed value is a usage error: exit rather than test with a
 * seed nobody asked for.
 */
static uint64_t t_seed_value;

static void t_seed_draw(void)
{
	const char *name = "SMMU_TEST_SEED", *env;
	uint64_t seed;
	char *end;

	env = getenv(name);
	if (!env || !*env) {
		name = "T_SEED";
		env = getenv(name);
	}
	if (env && *env) {
		errno = 0;
		seed = strtoull(env, &end, 0);
		if (errno || *end) {
			fprintf(stderr, "%s=%s: not a number\n", name, env);
			exit(2);
		}
	} else if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
		/* No entropy source (very old kernel, seccomp): still vary. */
		seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	}
	t_seed_value = seed;
	printf("# seed=0x%016" PRIx64 " (SMMU_TEST_SEED=0x%016" PRIx64
	       " reproduces)\n",
	       seed, seed);
	fflush(stdout);
}

uint64_t t_seed_fresh(void)
{
	/* Producer threads of the ring tests ask too: draw exactly once. */
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, t_seed_draw);
	return t_seed_value;
}
