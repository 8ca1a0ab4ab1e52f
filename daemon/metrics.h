/* SPDX-License-Identifier: MIT */
/*
 * daemon_metrics: the Prometheus text-format endpoint (text exposition format
 * 0.0.4) of smmu-offloadd, served by libevent's evhttp on the daemon's
 * event loop. GET /metrics answers with every service, host SMMU and
 * vSMMU counter and gauge and the per-host-SMMU histograms of core (see
 * docs/OPERATIONS.md for the list and what to alert on); any other path
 * is 404, any other method than GET 501 (evhttp's answer).
 *
 * Thread context: everything runs on the thread that dispatches @base
 * (the daemon's main thread, a core control thread). Library code: logs
 * nothing, returns 0 or -errno.
 */
#ifndef SMMU_OFFLOAD_DAEMON_METRICS_H
#define SMMU_OFFLOAD_DAEMON_METRICS_H

#include <stddef.h>
#include <sys/socket.h>

struct core_service;
struct event_base;
struct evbuffer;
struct rpc_server;
struct daemon_metrics;

/* Default port when --metrics names only an address. */
#define DAEMON_METRICS_DEFAULT_PORT 9464
/* Longest "ADDR:PORT" daemon_metrics_address() writes, with the NUL. */
#define DAEMON_METRICS_ADDR_MAX 64

/**
 * daemon_metrics_parse_addr() - parse a listen address.
 * @s: "PORT" (loopback 127.0.0.1), "IPV4:PORT", "[IPV6]:PORT", or an
 *     address without a port (DAEMON_METRICS_DEFAULT_PORT). Numeric only: no
 *     name resolution. PORT 0 picks a free port.
 * @ret, @ret_len: the socket address, written only on success.
 * Return: 0, -EINVAL.
 */
int daemon_metrics_parse_addr(const char *s, struct sockaddr_storage *ret,
			      socklen_t *ret_len);

/*
 * Extra samples appended to every scrape (the daemon's own counters, e.g.
 * suppressed log messages): write complete families (HELP, TYPE,
 * samples) to @out.
 */
typedef void (*daemon_metrics_extra_fn)(void *opaque, struct evbuffer *out);

/**
 * struct daemon_metrics_config - what to serve and where.
 * @addr:   listen address, daemon_metrics_parse_addr() syntax.
 * @srv:    the control server, for its client gauge; may be NULL.
 * @extra:  optional extra samples, with @opaque.
 */
struct daemon_metrics_config {
	const char *addr;
	const struct rpc_server *srv;
	daemon_metrics_extra_fn extra;
	void *opaque;
};

/**
 * daemon_metrics_new() - bind the address (SOCK_CLOEXEC, SO_REUSEADDR),
 * listen, and serve /metrics on @base.
 * @svc: the service to report on; must outlive the endpoint.
 * Return: 0 with *@ret; -EINVAL (address), -EADDRINUSE, -EACCES (a
 * privileged port), -ENOMEM, other socket errnos.
 */
int daemon_metrics_new(struct event_base *base, struct core_service *svc,
		       const struct daemon_metrics_config *cfg,
		       struct daemon_metrics **ret);

/**
 * daemon_metrics_address() - the bound address as "IPV4:PORT" or
 * "[IPV6]:PORT" (the real port when PORT 0 was asked for).
 * @buf: at least DAEMON_METRICS_ADDR_MAX bytes.
 * Return: 0, or getsockname()'s -errno.
 */
int daemon_metrics_address(const struct daemon_metrics *m, char *buf,
			   size_t len);

/* daemon_metrics_free() - close the listener and every scrape connection. */
void daemon_metrics_free(struct daemon_metrics *m);

/**
 * daemon_metrics_render() - append one full exposition of @svc to @out
 * (what GET /metrics answers; also for tests).
 * @srv: for the client gauge; may be NULL.
 * Return: 0, -ENOMEM; a core stats call that fails other than with
 * -ENOENT (an object that went away during the scrape is skipped).
 */
int daemon_metrics_render(struct core_service *svc,
			  const struct rpc_server *srv, struct evbuffer *out);

#endif
