import Broker
import Logging
import NIOCore
import Synchronization

/// Moves a Socket.IO namespace connection's events (replayed, then live) to its Engine.IO
/// session as `42["name",data]`, without a task of its own.
///
/// A task per connection waiting on its session would keep its stack slabs for the
/// connection's whole life. Instead the router session wakes the pump when events arrive
/// (``Session/onAvailable(_:)``), and the pump moves them on the waking thread while the
/// client has fewer than `maxInFlightFrames` untaken; when it has more, the pump stops and asks
/// the Engine.IO session to wake it once the client took frames (``EngineIOConnection/whenSpace(_:)``).
/// So a client that stops reading overflows its router session and is disconnected as a slow
/// consumer. One thread drains at a time; a wake-up during a drain makes it look again.
final class SocketIOEventPump: Sendable {
    private let session: Session
    private let connection: EngineIOConnection
    private let transport: SocketIOTransport
    private let state = Mutex(State())

    private struct State {
        var draining = false
        var again = false
        var ended = false
    }

    init(session: Session, connection: EngineIOConnection, transport: SocketIOTransport) {
        self.session = session
        self.connection = connection
        self.transport = transport
    }

    /// Starts moving events: those waiting now, then as they come.
    func start() {
        session.onAvailable { [self] in wake() }
    }

    private func wake() {
        let drains = state.withLock { state in
            if state.ended { return false }
            if state.draining {
                state.again = true
                return false
            }
            state.draining = true
            return true
        }
        guard drains else { return }
        repeat {
            drain()
        } while state.withLock { state in
            if state.again, !state.ended {
                state.again = false
                return true
            }
            state.draining = false
            return false
        }
    }

    private func drain() {
        // A closed session holds no events (closing empties it).
        while session.closeReason == nil {
            if connection.isBackedUp {
                // Woken inside the Engine.IO session's lock: look again from a task.
                connection.whenSpace { [self] in _ = transport.spawn { self.wake() } }
                return
            }
            let events = session.take(max: 16)
            if events.isEmpty { break }
            var effects: [ConnectionEffect] = []
            for event in events {
                effects += connection.send(.text(SocketIOPacket.encodeEvent(name: event.name, json: event.dataJSON)))
            }
            transport.gateway.metrics.delivered(.socketio, count: events.count)
            if !effects.isEmpty { perform(effects) }
        }
        if let reason = session.closeReason { end(reason) }
    }

    /// The router session closed: says why to the client when the server ended it.
    private func end(_ reason: SessionCloseReason) {
        let first = state.withLock { state in
            defer { state.ended = true }
            return !state.ended
        }
        guard first else { return }
        let metrics = transport.gateway.metrics
        metrics.connectionClosed(.socketio)
        switch reason {
        case .slowConsumer(let capacity):
            metrics.slowConsumer(.socketio, dropped: session.discardedCount)
            transport.logger.warning(
                "socket.io client too slow: disconnected", metadata: ["sid": "\(connection.sid)", "capacity": "\(capacity)"])
            // Dropped, not told (see EngineIOConnection.drop): the client reconnects, as after
            // a network drop, and a replay brings what it missed. Its socket may be full: do
            // not wait for anything to be written.
            let channel = connection.webSocketChannel
            perform(connection.drop())
            channel?.close(promise: nil)
        case .shutdown:
            // As the original's process exit did: the transport goes, clients reconnect to the
            // next server.
            perform(connection.drop())
        case .closed:
            break
        }
    }

    private func perform(_ effects: [ConnectionEffect]) {
        guard !effects.isEmpty else { return }
        let (transport, connection) = (self.transport, self.connection)
        if !transport.spawn({ await transport.perform(effects, on: connection) }) {
            transport.logger.debug("socket.io effects dropped at shutdown", metadata: ["sid": "\(connection.sid)"])
        }
    }
}
