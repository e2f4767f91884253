import DequeModule

extension EngineIOSession {
    /// A polling GET arrived for this sid.
    ///
    /// Yields `respond` (buffered frames, or `6` while upgrading, or the final `1`), `hold`
    /// (nothing to send yet), or `reject` (after the upgrade, or a second concurrent GET, which
    /// also closes the session as the reference server does).
    public mutating func pollRequestArrived() -> [Action] {
        switch connection {
        case .closed:
            return [.reject(.sessionIDUnknown)]
        case .webSocket:
            return [.reject(.badRequest)]
        case .closing:
            var frames = drainPollFrames(reserving: 1)
            // More than one answer holds: the close goes with the last of them.
            guard outbound.isEmpty else { return [.respond(EngineIOPayload.encode(frames))] }
            frames.append(.close)
            var actions: [Action] = [.respond(EngineIOPayload.encode(frames))]
            finish(.serverClosed, into: &actions)
            return actions
        case .polling(var polling):
            if polling.heldPoll {
                var actions: [Action] = [.reject(.badRequest)]
                fail(.duplicatePoll, into: &actions)
                return actions
            }
            if !outbound.isEmpty { return [.respond(EngineIOPayload.encode(drainPollFrames()))] }
            if let upgrade = polling.upgrade, upgrade.probed {
                // The client is pausing polling to switch: release it at once.
                return [.respond(EngineIOPayload.encode(CollectionOfOne(EngineIOFrame.noop)))]
            }
            polling.heldPoll = true
            connection = .polling(polling)
            return [.hold]
        }
    }

    /// The connection of the held GET dropped before it was answered. The session closes
    /// (the reference server's "poll connection closed prematurely"), unless an upgrade is under way.
    /// Call it only for the GET that got `hold` and no `answerHeldPoll` yet; once answered, a
    /// failed write of the answer is not reported here (a later GET may already be held).
    public mutating func pollConnectionLost() -> [Action] {
        guard case .polling(var polling) = connection, polling.heldPoll else { return [] }
        polling.heldPoll = false
        connection = .polling(polling)
        if polling.upgrade != nil { return [] }
        var actions: [Action] = []
        fail(.transportClosed, into: &actions)
        return actions
    }

    /// A polling POST arrived for this sid, with its whole body.
    ///
    /// Yields `respond("ok")` then the packets' effects (`deliver` for each message), or
    /// `reject` for a malformed or oversized body, which also closes the session.
    public mutating func postArrived(body: [UInt8], now: Instant) -> [Action] {
        switch connection {
        case .closed:
            return [.reject(.sessionIDUnknown)]
        case .webSocket:
            return [.reject(.badRequest)]
        case .closing:
            return [.respond(Self.postAcknowledgement)]
        case .polling:
            break
        }
        let packets: [EngineIOPacket]
        do {
            packets = try EngineIOPayload.decode(body, maxPayload: configuration.maxPayload)
        } catch {
            var actions: [Action] = []
            if case .payloadTooLarge = error {
                actions.append(.reject(.payloadTooLarge))
            } else {
                actions.append(.reject(.badRequest))
            }
            fail(.parseError(error), into: &actions)
            return actions
        }
        var actions: [Action] = [.respond(Self.postAcknowledgement)]
        for packet in packets {
            handle(packet, now: now, into: &actions)
            if case .closed = connection { break }
        }
        return actions
    }

    /// A WebSocket handshake arrived for this (polling) sid: the start of an upgrade.
    ///
    /// Yields `acceptWebSocket`, or `reject` if the session is not on polling or already upgrading.
    public mutating func webSocketOpened(now: Instant) -> [Action] {
        switch connection {
        case .polling(var polling) where polling.upgrade == nil:
            polling.upgrade = Upgrade(deadline: now + configuration.upgradeTimeout)
            connection = .polling(polling)
            return [.acceptWebSocket]
        case .closed:
            return [.reject(.sessionIDUnknown)]
        default:
            return [.reject(.badRequest)]
        }
    }

    /// A frame arrived on the session's WebSocket (or its probe WebSocket during an upgrade).
    public mutating func webSocketFrameArrived(_ frame: EngineIOFrame, now: Instant) -> [Action] {
        let tooLarge = frame.bytes.count > configuration.maxPayload
        switch connection {
        case .closing, .closed:
            return []
        case .webSocket:
            var actions: [Action] = []
            if tooLarge {
                fail(
                    .parseError(.payloadTooLarge(size: frame.bytes.count, limit: configuration.maxPayload)),
                    into: &actions)
                return actions
            }
            do {
                handle(try EngineIOPacket.decode(frame), now: now, into: &actions)
            } catch {
                fail(.parseError(error), into: &actions)
            }
            return actions
        case .polling(var polling):
            guard var upgrade = polling.upgrade else { return [.closeProbeWebSocket] }
            let packet = tooLarge ? nil : try? EngineIOPacket.decode(frame)
            var actions: [Action] = []
            switch packet {
            case .ping(let data) where !upgrade.probed && data == Array("probe".utf8):
                upgrade.probed = true
                polling.upgrade = upgrade
                actions.append(.sendOnWebSocket(.probeAnswer))
                if polling.heldPoll {
                    polling.heldPoll = false
                    actions.append(.answerHeldPoll(EngineIOPayload.encode(CollectionOfOne(EngineIOFrame.noop))))
                }
                connection = .polling(polling)
            case .upgrade where upgrade.probed:
                if polling.heldPoll {
                    actions.append(.answerHeldPoll(EngineIOPayload.encode(CollectionOfOne(EngineIOFrame.noop))))
                }
                connection = .webSocket
                actions.append(.upgraded)
                while let buffered = outbound.popFirst() { actions.append(.sendOnWebSocket(buffered)) }
                outboundBytes = 0
            default:
                // Anything else on a probe aborts the upgrade, not the session.
                polling.upgrade = nil
                connection = .polling(polling)
                actions.append(.closeProbeWebSocket)
            }
            return actions
        }
    }

    /// The session's WebSocket (or probe WebSocket) closed, from either side.
    public mutating func webSocketClosed() -> [Action] {
        switch connection {
        case .polling(var polling) where polling.upgrade != nil:
            polling.upgrade = nil
            connection = .polling(polling)
            return []
        case .webSocket:
            var actions: [Action] = []
            finish(.transportClosed, into: &actions)
            return actions
        default:
            return []
        }
    }

    /// One packet from the client on the session's own transport.
    mutating func handle(_ packet: EngineIOPacket, now: Instant, into actions: inout [Action]) {
        switch packet {
        case .message(let text):
            actions.append(.deliver(.text(text)))
        case .binaryMessage(let bytes):
            actions.append(.deliver(.binary(bytes)))
        case .pong:
            // An unsolicited pong changes nothing; an awaited one restarts the interval.
            if case .awaitingPong = heartbeat {
                heartbeat = .waiting(pingAt: now + configuration.pingInterval)
            }
        case .noop:
            break
        case .close:
            // The client leaves: release a held poll with a noop, as the reference server does.
            if case .polling(let polling) = connection {
                if polling.heldPoll {
                    actions.append(.answerHeldPoll(EngineIOPayload.encode(CollectionOfOne(EngineIOFrame.noop))))
                }
                if polling.upgrade != nil { actions.append(.closeProbeWebSocket) }
            }
            finish(.clientClosed, into: &actions)
        case .ping, .open, .upgrade:
            // In v4 the server pings, never the client; open and upgrade only make sense elsewhere.
            fail(.unexpectedPacket(packet.type), into: &actions)
        }
    }
}
