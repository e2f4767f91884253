// The hiredis 0.14 C client, seen from Swift only through RedisBackend (never in a public API).
#ifndef SWITCHBOARD_CHIREDIS_SHIM_H
#define SWITCHBOARD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/// Switches a connected context to non-blocking I/O: the fd gets O_NONBLOCK and hiredis stops
/// treating EAGAIN as an error (it checks its REDIS_BLOCK flag). TCP_NODELAY too: a request is
/// one write and must go out at once. Returns 0 or -1 with errno.
static inline int chiredis_set_nonblocking(redisContext *c) {
    int flags = fcntl(c->fd, F_GETFL);
    if (flags == -1 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) == -1) return -1;
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->flags &= ~REDIS_BLOCK;
    return 0;
}

#endif
