/* SPDX-License-Identifier: MIT */
/*
 * tests/lib: what more than one test program needs, written once.
 *
 *   clock      deadlines for event waits (never a sleep, never a threshold)
 *   fds        counting a process's open fds (leak checks)
 *   threads    running one function on several threads, joined
 *   daemon     smmu-offloadd as a child process (NOTIFY_SOCKET readiness)
 *   programs   running smmu-offloadctl (or any program), stdout captured
 *   ring       a VMM's side of one shared ring: memfd, eventfds, producer
 *   client     a VMM through libsmmu-offload: ring attach, counters
 *   raw        the control socket without the client library: frames
 *              with SCM_RIGHTS, requests packed by hand, replies decoded
 *
 * The in-process service (core + sim) has its own header, tlib-core.h.
 *
 * Helpers come in the iommufd selftests' trio where a caller needs the
 * raw result: _tlib_x() returns the 0 or -errno of the step a test may
 * expect to fail (what must hold around it is still ASSERTed, as each
 * says), tlib_x() ASSERTs success, and the test writes ASSERT_ERR(-E,
 * _tlib_x(...)) for the expected errno. ASSERTs (harness.h) end the test
 * from its main thread only: call these from a test body, a fixture or a
 * function they call, unless a function says "any thread". Nothing here
 * logs.
 */
#ifndef SMMU_OFFLOAD_TESTS_LIB_TLIB_H
#define SMMU_OFFLOAD_TESTS_LIB_TLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/types.h>

#include <smmu-offload/client.h>
#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "tests/harness.h"

/* ---- clock ------------------------------------------------------------ */

/* The t_now() value @ms milliseconds from now. */
double tlib_deadline(int ms);
/* Milliseconds left until @deadline (t_now() based), <= 0 once past:
 * a poll(2) timeout. */
int tlib_left_ms(double deadline);
/* sem_wait() for at most @ms: 0, or -ETIMEDOUT (another thread never
 * posted: a hang). */
int tlib_sem_wait(sem_t *s, int ms);

/* ---- fds -------------------------------------------------------------- */

/* Close *@fd if it is open (>= 0) and set it to -1. */
void tlib_close(int *fd);
/* Open fds of process @pid (0: this process, not counting the one used
 * to read the directory). */
int tlib_fds(pid_t pid);

/* A memfd (MFD_CLOEXEC) of @size bytes with @seals added; ASSERTs success. */
int tlib_memfd_sealed(const char *name, uint64_t size, unsigned int seals);

/* ---- shared memory ---------------------------------------------------- */

/*
 * Wait until (*@p & @mask) == @want (acquire load): a register the service
 * stores in shared memory has no event to wait on, so this polls, yielding
 * the CPU, until @ms pass (a hang backstop, not a timing assertion).
 * Returns whether it was seen.
 */
bool tlib_wait_u32(const uint32_t *p, uint32_t mask, uint32_t want, int ms);

/* ---- threads ---------------------------------------------------------- */

#define TLIB_THREADS_MAX 16

/* Run @fn on @n (<= TLIB_THREADS_MAX) threads at once, the i-th with
 * (char *)@args + i * @size, and join them: each must return NULL. */
void tlib_threads(void *(*fn)(void *), void *args, size_t size, unsigned int n);

/* ---- daemon ----------------------------------------------------------- */

/*
 * smmu-offloadd in a temporary directory: started as
 *   $SMMU_OFFLOADD --backend sim --socket DIR/so.sock ARGS... EXTRA...
 * (ARGS fixed per tlib_daemon_init(), EXTRA per start), readiness by the
 * NOTIFY_SOCKET protocol: poll on the notify socket and a pidfd, so a
 * daemon that dies during start-up fails the test at once. SKIPs when
 * $SMMU_OFFLOADD is not set (not run through meson test).
 * Owned by the test's main thread.
 */
struct tlib_daemon {
	char dir[64]; /* mode 0700 unless the test chmods it */
	char sock[96];
	char notify[96];
	char status[256]; /* STATUS= of the READY datagram, or "" */
	char metrics[80]; /* "ADDR:PORT" of the metrics URL in STATUS, or "" */
	const char *const *args; /* NULL-terminated, or NULL */
	const char *preload; /* LD_PRELOAD for the daemon, or NULL */
	bool capture_log; /* stderr on a pipe into @log (set before spawn) */
	bool journal; /* with capture_log: JOURNAL_STREAM names the pipe */
	pid_t pid; /* the started daemon, -1 when none */
	int pidfd; /* of @pid, -1 when none */
	int notify_fd;
	int err_fd; /* read end of the last spawned daemon's stderr, or -1 */
	char *log; /* capture_log: its stderr so far, NUL-terminated */
	size_t log_len, log_cap;
};

/* ARGS of the security tests: errors only on stderr. */
extern const char *const tlib_daemon_quiet[];

/* The directory, socket path and bound notify socket; @args as above. */
void tlib_daemon_init(struct tlib_daemon *d, const char *const *args);
/* fork+exec with @extra (NULL-terminated, may be NULL); no wait, and
 * d->pid is left alone (a second daemon may be spawned beside the
 * first). With capture_log, the log restarts with this process. */
pid_t tlib_daemon_spawn(struct tlib_daemon *d, const char *const *extra);
/* Spawn, then wait for READY=1 (fail if the daemon exits first); keep
 * STATUS= in d->status and the metrics address in d->metrics. */
void tlib_daemon_start(struct tlib_daemon *d, const char *const *extra);
/*
 * Spawn a daemon that must not start (a usage or start-up error): its
 * wait status once it exits; READY=1 from it fails the test at once
 * (no waiting for a daemon that will not exit).
 */
int tlib_daemon_exit(struct tlib_daemon *d, const char *const *extra);
/* Wait for the started daemon to exit on its own: its wait status; the
 * pidfd is closed. */
int tlib_daemon_wait(struct tlib_daemon *d);
/* SIGTERM: the daemon must drain and exit 0 (under ASan: no leak). */
void tlib_daemon_stop(struct tlib_daemon *d);
/* SIGKILL and reap. */
void tlib_daemon_kill(struct tlib_daemon *d);
/* Kill if still running, close and remove everything init made. */
void tlib_daemon_cleanup(struct tlib_daemon *d);
/* Open fds of the started daemon. */
int tlib_daemon_fds(const struct tlib_daemon *d);
/* capture_log: read what stderr has now; false at EOF. */
bool tlib_daemon_log_read(struct tlib_daemon *d);
/* capture_log: wait until the log contains @s; false on EOF or after
 * @timeout_ms. */
bool tlib_daemon_log_wait(struct tlib_daemon *d, const char *s, int timeout_ms);
/* capture_log: wait for more log until @deadline; false on timeout/EOF. */
bool tlib_daemon_log_more(struct tlib_daemon *d, double deadline);

/*
 * Fixture @fx with one daemon, self->d: tlib_daemon_init(@args) before
 * each test, tlib_daemon_cleanup() after it (also after a failed ASSERT:
 * no daemon outlives its test).
 */
#define TLIB_DAEMON_FIXTURE(fx, args)             \
	FIXTURE(fx)                               \
	{                                         \
		struct tlib_daemon d;             \
	};                                        \
	FIXTURE_SETUP(fx)                         \
	{                                         \
		tlib_daemon_init(&self->d, args); \
	}                                         \
	FIXTURE_TEARDOWN(fx)                      \
	{                                         \
		tlib_daemon_cleanup(&self->d);    \
	}

/* ---- programs --------------------------------------------------------- */

/* getenv(@name); SKIPs when it is not set (not run through meson test). */
const char *tlib_env(const char *name);

/* Wait for child @pid: its wait status. */
int tlib_wait_status(pid_t pid);
/* Run @argv (argv[0] a path); its stdout into @out (NUL-terminated; it
 * must fit), stderr inherited; returns the exit status (it must exit). */
int tlib_run(const char *const *argv, char *out, size_t size);
/* $SMMU_OFFLOADCTL [--socket @sock] @args... (NULL-terminated) with
 * tlib_run(); @sock may be NULL. SKIPs when the variable is not set. */
int tlib_ctl(const char *sock, const char *const *args, char *out, size_t size);

/* ---- ring ------------------------------------------------------------- */

/*
 * A VMM's side of one ring: the memfd (2^log2 entries), the doorbell and
 * completion eventfds and the mapped producer; @id and @vsmmu once
 * attached. Owned by the thread that produces on it (the VMM's).
 */
struct tlib_ring {
	int memfd, db, cq;
	struct ring_prod p;
	uint32_t id, vsmmu;
};

/* Create; the eventfds get EFD_CLOEXEC | @efd_flags (0: blocking, as a
 * VMM may leave them). Fds are -1 where creation failed. */
int _tlib_ring_new(struct tlib_ring *r, uint32_t log2, int efd_flags);
void tlib_ring_new(struct tlib_ring *r, uint32_t log2, int efd_flags);
/* Unmap and close what is open; fine after a failed new, and on a
 * zeroed struct whose three fds were set to -1. */
void tlib_ring_free(struct tlib_ring *r);

/* The Linux driver's CMD_SYNC (CS=SEV, MSH=ISH, MSIATTR=OIWB). Any
 * thread. */
struct cmdq_cmd tlib_sync_cmd(void);
/* @c as a little-endian ring entry. Any thread. */
struct smmu_ring_entry tlib_entry(struct cmdq_cmd c);
/* Push @c (not published): ring_prod_push()'s result, index to *ret. */
int _tlib_ring_push(struct tlib_ring *r, struct cmdq_cmd c, uint32_t *ret);
uint32_t tlib_ring_push(struct tlib_ring *r, struct cmdq_cmd c);
/* Push @c; a full ring is waited on (the service drains it) up to
 * @wait_ms each time. Returns the index. */
uint32_t tlib_ring_push_wait(struct tlib_ring *r, struct cmdq_cmd c,
			     int wait_ms);
/*
 * Push @n (< 16) commands and a tlib_sync_cmd() and publish: the SYNC's
 * index to *ret_sync (if not NULL). ring_prod_push()'s or _publish()'s
 * result. The underscore form from any thread (@n must be < 16).
 */
int _tlib_ring_push_sync(struct tlib_ring *r, const struct cmdq_cmd *cmds,
			 uint32_t n, uint32_t *ret_sync);
uint32_t tlib_ring_push_sync(struct tlib_ring *r, const struct cmdq_cmd *cmds,
			     uint32_t n);
/* Push @a and a SYNC, publish: the SYNC's index. */
uint32_t tlib_ring_push_pair(struct tlib_ring *r, struct cmdq_cmd a);
/*
 * The same, then wait for the SYNC (up to @wait_ms): the wait's result
 * (0, -EPIPE on a halt, ...), or the failed push's or publish's.
 */
int _tlib_ring_run(struct tlib_ring *r, const struct cmdq_cmd *cmds, uint32_t n,
		   int wait_ms, uint32_t *ret_sync);
void tlib_ring_run(struct tlib_ring *r, const struct cmdq_cmd *cmds, uint32_t n,
		   int wait_ms);

/* ---- client ----------------------------------------------------------- */

/* smmu_client_ring_attach() of @r to vSMMU @vs; sets r->id, r->vsmmu. */
int _tlib_client_ring_attach(struct smmu_client *c, uint32_t vs,
			     struct tlib_ring *r);
void tlib_client_ring_attach(struct smmu_client *c, uint32_t vs,
			     struct tlib_ring *r);
/*
 * A working VMM in three calls: vSMMU on @hsmmu, device @vsid on host
 * SID @psid, a new ring (2^@log2, @efd_flags) attached. The vSMMU id.
 */
uint32_t tlib_client_vmm(struct smmu_client *c, const char *hsmmu,
			 uint32_t psid, uint64_t vsid, struct tlib_ring *r,
			 uint32_t log2, int efd_flags);
/* Counter @name of scope @s (id @id): GetStats must succeed; the
 * lookup's result (-ENOENT: no such counter), value to *ret. */
int _tlib_stat(struct smmu_client *c, enum smmu_client_scope s, uint32_t id,
	       const char *name, uint64_t *ret);
uint64_t tlib_stat(struct smmu_client *c, enum smmu_client_scope s, uint32_t id,
		   const char *name);

/* ---- raw -------------------------------------------------------------- */

struct SmmuOffload__Request;

/* A SOCK_SEQPACKET connection to @path; @sndbuf (bytes) set as
 * SO_SNDBUF before connecting unless 0. */
int tlib_raw_connect(const char *path, int sndbuf);
/* One datagram of @len bytes with @n (<= 16) fds by SCM_RIGHTS, no
 * checks (tests exceed the protocol's limits on purpose); MSG_NOSIGNAL.
 * 0 or -errno. */
int tlib_raw_send(int s, const void *buf, size_t len, const int *fds,
		  unsigned int n);
/* @req packed into @buf (it must fit in @size): the length. */
size_t tlib_raw_pack(const struct SmmuOffload__Request *req, uint8_t *buf,
		     size_t size);

/* One decoded reply. */
struct tlib_reply {
	uint64_t id;
	int err; /* the reply's errno, 0 for success */
	bool has_message; /* a non-empty message came with it */
};

/*
 * Read one reply: rpc_frame_recv()'s error is returned as is; a frame
 * must carry no fds and decode as a Response, filled into *ret (0).
 */
int _tlib_raw_reply(int s, struct tlib_reply *ret);
/* The frame must arrive: the reply's error as -errno; *ret filled if
 * @ret is not NULL (the same for the calls below). */
int tlib_raw_reply(int s, struct tlib_reply *ret);
/* tlib_raw_send() (must succeed), then tlib_raw_reply(). */
int tlib_raw_call(int s, const void *buf, size_t len, const int *fds,
		  unsigned int n, struct tlib_reply *ret);
/* A Hello request (@name may be NULL) packed into @buf: the length. */
size_t tlib_raw_pack_hello(uint8_t *buf, size_t size, uint64_t id,
			   uint32_t version, const char *name);
/* Send Hello (request id 1) with protocol @version: 0 or -errno. */
int tlib_raw_send_hello(int s, uint32_t version);
/* Hello, and its reply's -errno. */
int tlib_raw_hello(int s, uint32_t version, struct tlib_reply *ret);
/* List (request id @id) with @n fds attached: the reply's -errno. */
int tlib_raw_list(int s, uint64_t id, const int *fds, unsigned int n,
		  struct tlib_reply *ret);
/* AttachRing of vSMMU @vsmmu (request id @id) with @n fds attached: the
 * reply's -errno. */
int tlib_raw_attach_ring(int s, uint64_t id, uint32_t vsmmu, const int *fds,
			 unsigned int n, struct tlib_reply *ret);

#endif
