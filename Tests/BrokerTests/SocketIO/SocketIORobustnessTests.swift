import Testing

@testable import Broker

extension SocketIOTests {
    @Suite("Hostile input")
    struct SocketIORobustnessTests {
        static let seeds: [[UInt8]] = [
            #"42["chat-message",{"roomId":"room:a","message":"hi"}]"#, #"40{"token":"Bearer x"}"#, "2probe", "5", "3",
            #"451-/admin,7["up",{"_placeholder":true,"num":0}]"#, "4hello\u{1e}bAQIDBA==\u{1e}1",
            #"43/a,9[{"a":[1,2.5e3,"\u00e9"]}]"#,
        ].map { Array($0.utf8) }

        /// Bit flips, truncations, insertions and random bytes around valid packets.
        static func mutations(count: Int) -> [[UInt8]] {
            var generator = SplitMix64(state: 42)
            var inputs: [[UInt8]] = []
            for index in 0..<count {
                var input = seeds[index % seeds.count]
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let position = input.isEmpty ? 0 : Int.random(in: 0..<input.count, using: &generator)
                    switch Int.random(in: 0..<4, using: &generator) {
                    case 0 where !input.isEmpty: input[position] ^= UInt8(1 << Int.random(in: 0..<8, using: &generator))
                    case 1: input = Array(input.prefix(position))
                    case 2: input.insert(UInt8.random(in: 0...255, using: &generator), at: position)
                    default:
                        input.insert(
                            contentsOf: [0x1E, 0x22, 0x5B, 0x7B, 0x2C, 0x5C][
                                Int.random(in: 0..<6, using: &generator)...
                            ].prefix(1), at: position)
                    }
                }
                inputs.append(input)
            }
            return inputs
        }

        @Test func decodersNeverCrashAndRejectOrRoundTrip() {
            var accepted = 0
            for input in Self.mutations(count: 5000) {
                if let packets = try? EngineIOPayload.decode(input, maxPayload: 1000) {
                    accepted += 1
                    // Whatever decodes re-encodes to a payload that decodes the same.
                    let again = try? EngineIOPayload.decode(
                        EngineIOPayload.encode(packets.map(\.frame)), maxPayload: 100_000)
                    #expect(again == packets)
                }
                if let packet = try? SocketIOPacket.decode(input) {
                    accepted += 1
                    var decoded = try? SocketIOPacket.decode(packet.encoded)
                    decoded?.attachmentCount = packet.attachmentCount
                    #expect(decoded == packet)
                }
                _ = try? JSONValue.parse(utf8: input)
            }
            // The mutations keep some inputs valid, so both paths above were exercised.
            #expect(accepted > 100)
        }

        @Test func sessionsSurviveHostileTraffic() {
            var engine = EngineIOSession(sid: "s", transport: .webSocket, configuration: .init(), now: start)
            var socket = SocketIOSession()
            var closes = 0
            for (index, input) in Self.mutations(count: 3000).enumerated() {
                if engine.closeReason != nil {
                    engine = EngineIOSession(
                        sid: "s\(index)", transport: .webSocket, configuration: .init(), now: start)
                    socket = SocketIOSession()
                    closes += 1
                }
                for action in engine.webSocketFrameArrived(.text(input), now: at(1)) {
                    guard case .deliver(let message) = action else { continue }
                    switch socket.receive(message) {
                    case .authenticate: _ = socket.connectAccepted(sid: "x")
                    case .close: _ = engine.close(now: at(1))
                    default: break
                    }
                }
            }
            #expect(closes > 0)
        }
    }
}
