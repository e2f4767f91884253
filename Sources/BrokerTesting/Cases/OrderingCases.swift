import Broker
import Testing

/// Delivery order: a subscriber receives messages in the order the commands that published
/// them ran, whichever client or node ran them (Redis writes each message into subscribers'
/// buffers as the command executes). The router numbers events in commit order and relies
/// on this to deliver each user's events in that order.
extension BrokerConformance {
    static let orderingCases: [ConformanceCase] = [
        ConformanceCase("ordering: messages from concurrent committing clients arrive in commit order") { t async throws in
            let channel = t.channel("ordered")
            let counter = t.key("counter")
            let writers = 8
            let commitsEach = 25
            let total = writers * commitsEach
            let received = try await t.broker.subscribe(to: [channel], patterns: [], buffering: .default) {
                subscription in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<writers {
                        let client = writer.isMultiple(of: 2) ? t.broker : t.peer
                        group.addTask {
                            for _ in 0..<commitsEach {
                                // Each commit publishes the number it wrote: commit order is
                                // the order of the numbers.
                                _ = try await client.transaction(watching: [counter], maxAttempts: 10_000) {
                                    let current = try await client.get(counter).flatMap {
                                        Int(String(decoding: $0, as: UTF8.self))
                                    } ?? 0
                                    let next = Array(String(current + 1).utf8)
                                    return Transaction(commands: [
                                        .set(key: counter, value: next, expiry: .never, condition: .always),
                                        .publish(payload: next, channel: channel),
                                    ])
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                return try await withDeadline("\(total) ordered messages") {
                    var numbers: [Int] = []
                    for try await message in subscription {
                        numbers.append(Int(String(decoding: message.payload, as: UTF8.self)) ?? -1)
                        if numbers.count == total { break }
                    }
                    return numbers
                }
            }
            #expect(received == Array(1...total))
        }
    ]
}
