import DequeModule

/// The server side of one Engine.IO v4 session, as a state machine with no I/O and no clock.
///
/// The transport (the gateway) owns one per sid, behind a lock, and feeds it what happens:
/// polling GETs and POSTs, a WebSocket opening, its frames and its closing, frames to send,
/// timer expiries. Each input returns actions (`Action`, or `SendAction` for `send(_:)`) that
/// the transport performs in order. Time comes in as values: after each call, sleep until
/// `nextDeadline` and call `timerFired(now:)`.
///
/// Transports: a session starts on polling (handshake with `upgrades: ["websocket"]`) or on a
/// WebSocket (`upgrades: []`). A polling session upgrades when a WebSocket opens for its sid:
/// the client sends `2probe`, the session answers `3probe` and releases a held GET with `6`,
/// the client sends `5`, buffered frames move to the WebSocket.
///
/// Polling keeps at most one GET held and buffers outbound frames, bounded by
/// `maxBufferedFrames`/`maxBufferedBytes`; overflow closes the session (`outboundBufferFull`).
public struct EngineIOSession: Sendable {
    /// Time values given to the session; it never reads a clock itself.
    public typealias Instant = ContinuousClock.Instant

    /// The transport a session runs on.
    public enum Transport: Sendable, Hashable {
        case polling
        case webSocket
    }

    struct Upgrade: Sendable {
        var probed = false
        var deadline: Instant
    }

    struct Polling: Sendable {
        var heldPoll = false
        var upgrade: Upgrade?
    }

    enum Connection: Sendable {
        case polling(Polling)
        case webSocket
        /// `close` was asked with no GET held: the next GET gets the rest of the buffer and `1`.
        case closing(deadline: Instant)
        case closed(CloseReason)
    }

    enum Heartbeat: Sendable {
        case waiting(pingAt: Instant)
        case awaitingPong(deadline: Instant)
    }

    /// The body answering a successful POST.
    public static let postAcknowledgement: [UInt8] = Array("ok".utf8)

    /// The session id, as sent in the handshake.
    public let sid: String
    /// The timings and bounds this session runs with.
    public let configuration: EngineIOConfiguration
    /// The open packet's content.
    public let handshake: EngineIOHandshake
    var connection: Connection
    var heartbeat: Heartbeat
    var outbound: Deque<EngineIOFrame> = []
    var outboundBytes = 0

    /// A new session on `transport`. Send `openingFrame` first: as the body of the handshake GET,
    /// or as the first WebSocket frame.
    public init(sid: String, transport: Transport, configuration: EngineIOConfiguration, now: Instant) {
        self.sid = sid
        self.configuration = configuration
        switch transport {
        case .polling:
            self.handshake = EngineIOHandshake(sid: sid, upgrades: ["websocket"], configuration: configuration)
            self.connection = .polling(Polling())
        case .webSocket:
            self.handshake = EngineIOHandshake(sid: sid, upgrades: [], configuration: configuration)
            self.connection = .webSocket
        }
        self.heartbeat = .waiting(pingAt: now + configuration.pingInterval)
    }

    /// The open packet, to send before anything else.
    public var openingFrame: EngineIOFrame { handshake.frame }

    /// The current transport; `nil` once closing or closed.
    public var transport: Transport? {
        switch connection {
        case .polling: .polling
        case .webSocket: .webSocket
        case .closing, .closed: nil
        }
    }

    /// Whether a probe WebSocket is attached and the upgrade not finished.
    public var isUpgrading: Bool {
        if case .polling(let polling) = connection { return polling.upgrade != nil }
        return false
    }

    /// Why the session ended, or `nil` while it lives.
    public var closeReason: CloseReason? {
        if case .closed(let reason) = connection { return reason }
        return nil
    }

    /// Frames waiting for the client's next GET.
    public var bufferedFrameCount: Int { outbound.count }

    /// When to call `timerFired(now:)` next; `nil` once closed.
    public var nextDeadline: Instant? {
        var deadline: Instant
        switch heartbeat {
        case .waiting(let pingAt): deadline = pingAt
        case .awaitingPong(let pongDeadline): deadline = pongDeadline
        }
        switch connection {
        case .closed: return nil
        case .closing(let closeDeadline): return closeDeadline
        case .polling(let polling):
            if let upgrade = polling.upgrade { deadline = min(deadline, upgrade.deadline) }
        case .webSocket: break
        }
        return deadline
    }

    /// Queues `frame` for the client (the hot path of a broadcast: no copy of its bytes).
    public mutating func send(_ frame: EngineIOFrame) -> SendAction {
        switch connection {
        case .webSocket:
            return .sendOnWebSocket(frame)
        case .closing, .closed:
            return .discarded
        case .polling(var polling):
            if polling.heldPoll {
                // A held poll means the buffer is empty: the frame alone is the answer.
                polling.heldPoll = false
                connection = .polling(polling)
                return .answerHeldPoll(EngineIOPayload.encode(CollectionOfOne(frame)))
            }
            let size = EngineIOPayload.encodedSize(of: frame) + 1
            guard outbound.count < configuration.maxBufferedFrames,
                outboundBytes + size <= configuration.maxBufferedBytes
            else {
                var actions: [Action] = []
                fail(.outboundBufferFull, into: &actions)
                return .close(actions)
            }
            outbound.append(frame)
            outboundBytes += size
            return .buffered
        }
    }

    /// Ends the session from the server side. Frames already buffered for a polling client go
    /// out, followed by a close packet, on its next GET (or the held one).
    public mutating func close(now: Instant) -> [Action] {
        var actions: [Action] = []
        switch connection {
        case .closing, .closed:
            return []
        case .webSocket:
            connection = .closed(.serverClosed)
            actions.append(.closed(.serverClosed))
        case .polling(let polling):
            if polling.upgrade != nil { actions.append(.closeProbeWebSocket) }
            if polling.heldPoll {
                actions.append(.answerHeldPoll(EngineIOPayload.encode(CollectionOfOne(EngineIOFrame.close))))
                connection = .closed(.serverClosed)
                actions.append(.closed(.serverClosed))
            } else {
                connection = .closing(deadline: now + configuration.pingTimeout)
            }
        }
        return actions
    }

    /// Call at or after `nextDeadline`: sends pings, closes on ping timeout, drops a probe
    /// WebSocket that did not upgrade in time, gives up on a closing polling client.
    public mutating func timerFired(now: Instant) -> [Action] {
        var actions: [Action] = []
        switch connection {
        case .closed:
            return []
        case .closing(let deadline):
            if now >= deadline { finish(.serverClosed, into: &actions) }
            return actions
        case .polling(var polling):
            if let upgrade = polling.upgrade, now >= upgrade.deadline {
                polling.upgrade = nil
                connection = .polling(polling)
                actions.append(.closeProbeWebSocket)
            }
        case .webSocket:
            break
        }
        switch heartbeat {
        case .waiting(let pingAt) where now >= pingAt:
            heartbeat = .awaitingPong(deadline: now + configuration.pingTimeout)
            sendControl(.ping, into: &actions)
        case .awaitingPong(let deadline) where now >= deadline:
            fail(.pingTimeout, into: &actions)
        default:
            break
        }
        return actions
    }

    /// Sends a frame the server itself produces, outside the buffer bounds (there are few).
    mutating func sendControl(_ frame: EngineIOFrame, into actions: inout [Action]) {
        switch connection {
        case .webSocket:
            actions.append(.sendOnWebSocket(frame))
        case .polling(var polling):
            if polling.heldPoll {
                polling.heldPoll = false
                connection = .polling(polling)
                actions.append(.answerHeldPoll(EngineIOPayload.encode(CollectionOfOne(frame))))
            } else {
                outbound.append(frame)
                outboundBytes += EngineIOPayload.encodedSize(of: frame) + 1
            }
        case .closing, .closed:
            break
        }
    }

    /// Ends the session on an error: a held poll gets a close packet, a probe WebSocket is closed,
    /// the buffer is dropped.
    mutating func fail(_ reason: CloseReason, into actions: inout [Action]) {
        if case .polling(let polling) = connection {
            if polling.heldPoll {
                actions.append(.answerHeldPoll(EngineIOPayload.encode(CollectionOfOne(EngineIOFrame.close))))
            }
            if polling.upgrade != nil { actions.append(.closeProbeWebSocket) }
        }
        finish(reason, into: &actions)
    }

    mutating func finish(_ reason: CloseReason, into actions: inout [Action]) {
        connection = .closed(reason)
        outbound.removeAll()
        outboundBytes = 0
        actions.append(.closed(reason))
    }

    /// Takes buffered frames for one poll answer: all of them, or as many as fit `maxPayload`
    /// and ``EngineIOConfiguration/maxPacketsPerPoll`` less `reserved` (at least one), leaving
    /// the rest for the next GET.
    mutating func drainPollFrames(reserving reserved: Int = 0) -> [EngineIOFrame] {
        var taken: [EngineIOFrame] = []
        var size = 0
        while let frame = outbound.first, taken.count < configuration.maxPacketsPerPoll - reserved {
            let frameSize = EngineIOPayload.encodedSize(of: frame) + 1
            if !taken.isEmpty, size + frameSize > configuration.maxPayload { break }
            taken.append(outbound.removeFirst())
            outboundBytes -= frameSize
            size += frameSize
        }
        return taken
    }
}
