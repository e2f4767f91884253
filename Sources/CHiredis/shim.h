// The hiredis 0.14 C client, seen from Swift only through RedisBackend (never in a public API).
#ifndef SWITCHBOARD_CHIREDIS_SHIM_H
#define SWITCHBOARD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/// Switches a connected context to non-blocking I/O: the fd gets O_NONBLOCK and hiredis stops
/// treating EAGAIN as an error (it checks its REDIS_BLOCK flag). Returns 0 or -1 with errno.
static inline int chiredis_set_nonblocking(redisContext *c) {
    int flags = fcntl(c->fd, F_GETFL);
    if (flags == -1 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) == -1) return -1;
    c->flags &= ~REDIS_BLOCK;
    return 0;
}

/// Whether hiredis still holds unwritten output for the context.
static inline int chiredis_has_pending_output(const redisContext *c) {
    return c->obuf != NULL && sdslen(c->obuf) > 0;
}

#endif
