/* SPDX-License-Identifier: MIT */
/*
 * rpc server: the listening sockets, who may connect, and how many.
 *
 * Two sockets: the VMM socket (the configured mode, the allow lists, the
 * global and per-uid limits) and the admin socket (mode 0600, admins
 * only, its own RPC_ADMIN_MAX_CLIENTS slots). The admin socket exists so
 * that smmu-offloadctl never competes with VMMs for a slot or for a place
 * in the listen backlog: peers that are not admins cannot even connect()
 * to it (file mode), and the VMM socket's limits cannot fill it.
 *
 * Out of fds: accept() fails with EMFILE and the pending connection stays
 * in the backlog, so the listening socket stays readable and libevent
 * would call us again at once, forever. We hold one fd in reserve: on
 * EMFILE it is closed, accept() takes the connection (an admin one is
 * served, a VMM one is told EMFILE and closed) and the reserve is opened
 * again when an fd is free. With the reserve spent too, accepting pauses
 * for RPC_ACCEPT_PAUSE_MS (a timer, never a busy loop).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "rpc/server_i.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux >= 4.13 */
#endif

#define RPC_ACCEPT_PAUSE_MS 100
#define RPC_ADMIN_SOCKET_MODE 0600
#define RPC_OVERFLOW_ID_DEFAULT 65534u

/* ---- who may connect ------------------------------------------------ */

static unsigned int read_id(const char *path)
{
	unsigned int v = RPC_OVERFLOW_ID_DEFAULT;
	FILE *f = fopen(path, "re");

	if (f) {
		if (fscanf(f, "%u", &v) != 1)
			v = RPC_OVERFLOW_ID_DEFAULT;
		fclose(f);
	}
	return v;
}

void rpc_overflow_ids(uid_t *ret_uid, gid_t *ret_gid)
{
	*ret_uid = (uid_t)read_id("/proc/sys/kernel/overflowuid");
	*ret_gid = (gid_t)read_id("/proc/sys/kernel/overflowgid");
}

static bool gid_listed(const struct rpc_server *srv, gid_t gid)
{
	/* An unmapped group reads as the overflow gid: it names nobody. */
	if (gid == srv->overflow_gid && !srv->cfg.allow_overflow_ids)
		return false;
	for (unsigned int i = 0; i < srv->cfg.n_allow_gids; i++)
		if (srv->allow_gids[i] == gid)
			return true;
	return false;
}

/*
 * Is one of the peer's supplementary groups allowed? SO_PEERGROUPS gives
 * the groups of the peer's credentials at connect() time, mapped into our
 * user namespace. A kernel without it (before 4.13: ENOPROTOOPT) leaves
 * the primary gid only.
 */
static bool groups_allowed(struct rpc_server *srv, int sock)
{
	gid_t small[64], *g = small;
	socklen_t len = sizeof(small);
	bool ok = false;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		if (errno != ERANGE) {
			srv_log(srv, LOG_DEBUG, "SO_PEERGROUPS: %s",
				strerror(errno));
			return false;
		}
		/* len is what the kernel needs (NGROUPS_MAX bounds it). */
		g = malloc(len);
		if (!g ||
		    getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
			free(g);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t) && !ok; i++)
		ok = gid_listed(srv, g[i]);
	if (g != small)
		free(g);
	return ok;
}

static bool peer_allowed(struct rpc_server *srv, int sock,
			 const struct rpc_peer *p)
{
	if (p->uid == srv->overflow_uid) {
		/* Unmapped in our namespace: only by number, with the opt-in. */
		if (!srv->cfg.allow_overflow_ids)
			return false;
		for (unsigned int i = 0; i < srv->cfg.n_allow_uids; i++)
			if (srv->allow_uids[i] == p->uid)
				return true;
		return false;
	}
	if (p->admin)
		return true;
	for (unsigned int i = 0; i < srv->cfg.n_allow_uids; i++)
		if (srv->allow_uids[i] == p->uid)
			return true;
	if (!srv->cfg.n_allow_gids)
		return false;
	return gid_listed(srv, p->gid) || groups_allowed(srv, sock);
}

static unsigned int conns_of_uid(const struct rpc_server *srv, uid_t uid)
{
	unsigned int n = 0;

	for (const struct rpc_conn *c = srv->conns; c; c = c->next)
		n += !c->on_admin && c->peer.uid == uid;
	return n;
}

/* Tell a peer why it is refused (best effort), then hang up. */
static void refuse(struct rpc_server *srv, int sock, int err, const char *msg)
{
	SmmuOffload__Response resp = SMMU_OFFLOAD__RESPONSE__INIT;

	srv->conns_refused++;
	resp.id = 0;
	resp.has_error = true;
	resp.error = err;
	resp.message = (char *)msg;
	rpc_msg_send(sock, &resp.base, NULL);
	close(sock);
	srv_refill_reserve(srv);
}

/*
 * Why @p may not have a connection on the socket it came in on: 0 (it
 * may), or an errno with @msg set.
 */
static int admission(struct rpc_server *srv, int sock, const struct rpc_peer *p,
		     bool on_admin, char *msg, size_t size)
{
	unsigned int n;

	if (on_admin) {
		if (!p->admin) {
			snprintf(
				msg, size,
				"uid %u: the admin socket is for root and the daemon's uid",
				(unsigned int)p->uid);
			return EACCES;
		}
		if (srv->n_admin >= RPC_ADMIN_MAX_CLIENTS) {
			snprintf(msg, size, "%u admin connections already",
				 srv->n_admin);
			return EMFILE;
		}
		return 0;
	}
	if (!peer_allowed(srv, sock, p)) {
		snprintf(msg, size, "uid %u gid %u is not allowed",
			 (unsigned int)p->uid, (unsigned int)p->gid);
		return EACCES;
	}
	if (srv->n_conns >= srv->cfg.max_clients) {
		snprintf(msg, size, "too many clients (%u)", srv->n_conns);
		return EMFILE;
	}
	n = conns_of_uid(srv, p->uid);
	if (n >= srv->cfg.max_clients_per_uid) {
		snprintf(msg, size, "too many clients of uid %u (%u)",
			 (unsigned int)p->uid, n);
		return EMFILE;
	}
	return 0;
}

/* ---- accepting ------------------------------------------------------ */

void srv_refill_reserve(struct rpc_server *srv)
{
	if (srv->reserve_fd < 0)
		srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_server *srv = arg;

	(void)fd;
	(void)what;
	srv_refill_reserve(srv);
	event_add(srv->lev, NULL);
	if (srv->aev)
		event_add(srv->aev, NULL);
}

/* Out of fds with the reserve spent: stop accepting for a while. */
static void pause_accepting(struct rpc_server *srv)
{
	struct timeval tv = { 0, RPC_ACCEPT_PAUSE_MS * 1000 };

	event_del(srv->lev);
	if (srv->aev)
		event_del(srv->aev);
	evtimer_add(srv->resume_ev, &tv);
}

/*
 * accept4() that copes with EMFILE/ENFILE by spending the reserve fd
 * (*ret_spent: the reserve is gone until srv_refill_reserve()). Returns
 * the socket, or -1 (nothing to take, or accepting is paused).
 */
static int take_connection(struct rpc_server *srv, int lsock, bool *ret_spent)
{
	int sock, err;

	*ret_spent = false;
	sock = accept4(lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (sock >= 0)
		return sock;
	err = errno;
	if (err != EMFILE && err != ENFILE) {
		if (err != EAGAIN && err != EINTR && err != ECONNABORTED)
			srv_log(srv, LOG_WARNING, "accept: %s", strerror(err));
		return -1;
	}
	srv->fd_exhausted++;
	if (srv->reserve_fd >= 0) {
		close(srv->reserve_fd);
		srv->reserve_fd = -1;
		sock = accept4(lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (sock >= 0) {
			*ret_spent = true;
			return sock;
		}
		srv_refill_reserve(srv);
	}
	srv_log(srv, LOG_ERR,
		"accept: %s, no fd in reserve: not accepting for %u ms",
		strerror(err), RPC_ACCEPT_PAUSE_MS);
	pause_accepting(srv);
	return -1;
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_server *srv = arg;
	bool on_admin = fd == srv->asock, spent;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct rpc_peer peer;
	char msg[128];
	int sock, err;

	(void)what;
	sock = take_connection(srv, (int)fd, &spent);
	if (sock < 0)
		return;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		srv_log(srv, LOG_WARNING, "SO_PEERCRED: %s", strerror(errno));
		close(sock);
		srv_refill_reserve(srv);
		return;
	}
	peer = (struct rpc_peer){
		.uid = cred.uid,
		.gid = cred.gid,
		.pid = cred.pid,
		.admin = (cred.uid == 0 || cred.uid == srv->euid) &&
			 cred.uid != srv->overflow_uid,
	};
	err = admission(srv, sock, &peer, on_admin, msg, sizeof(msg));
	if (!err && spent && !on_admin) {
		/*
		 * Taken with the reserve fd: a VMM is told why and closed, so
		 * the reserve comes back (an admin keeps it until an fd is
		 * free: srv_refill_reserve() on every close).
		 */
		snprintf(msg, sizeof(msg), "the service is out of fds");
		err = EMFILE;
	}
	if (err) {
		srv_log(srv, LOG_WARNING,
			"refused connection%s from pid %d uid %u gid %u: %s",
			on_admin ? " on the admin socket" : "", (int)cred.pid,
			(unsigned int)cred.uid, (unsigned int)cred.gid, msg);
		refuse(srv, sock, err, msg);
		return;
	}
	if (srv_conn_add(srv, sock, &peer, on_admin)) {
		srv_log(srv, LOG_ERR, "out of memory accepting a client");
		srv_refill_reserve(srv);
	}
}

/* ---- listening socket ----------------------------------------------- */

/*
 * Look at an existing @path: a live server -> -EADDRINUSE; not a socket
 * -> -ENOTSOCK; nothing there -> 0; a stale socket -> 1.
 */
static int probe(const struct sockaddr_un *sa)
{
	struct stat st;
	int s, r;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	r = connect(s, (const struct sockaddr *)sa, sizeof(*sa));
	if (r == 0) {
		close(s);
		return -EADDRINUSE;
	}
	r = errno;
	close(s);
	return r == ECONNREFUSED ? 1 : -r;
}

/* probe(), and remove a stale socket. */
static int clear_stale(const struct sockaddr_un *sa)
{
	int r = probe(sa);

	if (r <= 0)
		return r;
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int rpc_socket_probe(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = probe(&sa);
	return r > 0 ? 0 : r;
}

static int listen_socket(const char *path, mode_t mode, int *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int s, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = clear_stale(&sa);
	if (r)
		return r;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	/*
	 * The umask makes the file no more permissive than @mode from the
	 * moment it exists; chmod then sets exactly @mode (the umask may have
	 * removed bits the caller asked for).
	 */
	old = umask(0777 & ~mode);
	r = bind(s, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		goto err_close;
	}
	if (chmod(path, mode) < 0 || listen(s, 64) < 0) {
		r = -errno;
		goto err_unlink;
	}
	*ret = s;
	return 0;

err_unlink:
	unlink(path);
err_close:
	close(s);
	return r;
}

static int listen_on(struct rpc_server *srv, const char *path, mode_t mode,
		     int *ret_sock, struct event **ret_ev)
{
	int r = listen_socket(path, mode, ret_sock);

	if (r)
		return r;
	*ret_ev = event_new(srv->base, *ret_sock, EV_READ | EV_PERSIST,
			    on_accept, srv);
	if (!*ret_ev || event_add(*ret_ev, NULL))
		return -ENOMEM;
	return 0;
}

int srv_listen(struct rpc_server *srv)
{
	int r;

	srv->resume_ev = evtimer_new(srv->base, on_resume, srv);
	if (!srv->resume_ev)
		return -ENOMEM;
	r = listen_on(srv, srv->path, srv->cfg.mode, &srv->lsock, &srv->lev);
	if (r)
		return r;
	if (srv->admin_path) {
		r = listen_on(srv, srv->admin_path, RPC_ADMIN_SOCKET_MODE,
			      &srv->asock, &srv->aev);
		if (r)
			return r;
	}
	srv_refill_reserve(srv);
	return srv->reserve_fd < 0 ? -errno : 0;
}

void srv_unlisten(struct rpc_server *srv)
{
	if (srv->lev)
		event_free(srv->lev);
	if (srv->aev)
		event_free(srv->aev);
	if (srv->resume_ev)
		event_free(srv->resume_ev);
	if (srv->lsock >= 0) {
		close(srv->lsock);
		unlink(srv->path);
	}
	if (srv->asock >= 0) {
		close(srv->asock);
		unlink(srv->admin_path);
	}
	if (srv->reserve_fd >= 0)
		close(srv->reserve_fd);
	srv->lev = srv->aev = srv->resume_ev = NULL;
	srv->lsock = srv->asock = srv->reserve_fd = -1;
}
