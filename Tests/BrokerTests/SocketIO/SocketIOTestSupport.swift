import Testing

@testable import Broker

/// Namespace of the Socket.IO tests: their helpers live here, so they cannot clash with
/// other BrokerTests files' top-level names.
enum SocketIOTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Time values for driving sessions: no clock is read after `start`.
    static let start = ContinuousClock.now
    static func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }

    static func pollingSession(_ configuration: EngineIOConfiguration = .init()) -> EngineIOSession {
        EngineIOSession(sid: "sid1", transport: .polling, configuration: configuration, now: start)
    }

    /// A small seeded generator, so generated inputs are the same on every run.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

extension SocketIOSession {
    /// Feeds one text message, as the Engine.IO layer delivers it (no `4`).
    mutating func receive(_ text: String) -> Action { receive(.text(SocketIOTests.bytes(text))) }

    /// A session past CONNECT, accepted with sid `s1`.
    static func connected() -> SocketIOSession {
        var session = SocketIOSession()
        _ = session.receive("0")
        _ = session.connectAccepted(sid: "s1")
        return session
    }
}

extension SocketIOSession.Action {
    var isClose: Bool {
        if case .close = self { return true }
        return false
    }
}
