import Broker
import Testing

/// Optimistic transactions (`WATCH`/`MULTI`/`EXEC`).
extension BrokerConformance {
    static let transactionCases: [ConformanceCase] = [
        ConformanceCase("transaction: commits when no watched key changed, with one reply per command") { t async throws in
            let key = t.key("k"), other = t.key("other")
            try await t.broker.set(key, to: "1")
            let attempt = try await t.broker.attemptTransaction(watching: [key]) {
                let current = try await t.broker.string(key) ?? ""
                return Transaction(
                    commands: [
                        .set(key: key, value: (current + "+").bytes, expiry: .never, condition: .always),
                        .increment(key: other, by: 3),
                    ], value: current)
            }
            guard case .committed(let seen, let replies) = attempt else {
                Issue.record("expected a commit, got \(attempt)")
                return
            }
            #expect(seen == "1")
            #expect(replies == [.ok, .integer(3)])
            #expect(try await t.peer.string(key) == "1+")
            // A read-only decision commits with no replies; so does watching nothing.
            let readOnly = try await t.broker.attemptTransaction(watching: [key]) {
                Transaction(commands: [], value: try await t.broker.string(key))
            }
            guard case .committed(let read, let none) = readOnly else {
                Issue.record("expected a read-only commit, got \(readOnly)")
                return
            }
            #expect(read == "1+")
            #expect(none.isEmpty)
            let unwatched = try await t.broker.attemptTransaction(watching: []) {
                Transaction(commands: [.increment(key: other, by: 1)])
            }
            guard case .committed(_, let replies) = unwatched else {
                Issue.record("expected a commit without watched keys, got \(unwatched)")
                return
            }
            #expect(replies == [.integer(4)])
        },
        ConformanceCase("transaction: a watched key written between watch and commit conflicts; nothing applies") { t async throws in
            let key = t.key("k"), untouched = t.key("untouched")
            try await t.broker.set(key, to: "before")
            let attempt = try await t.broker.attemptTransaction(watching: [key]) {
                _ = try await t.broker.get(key)
                try await t.broker.set(key, to: "intruder")
                return Transaction(commands: [
                    .set(key: key, value: "mine".bytes, expiry: .never, condition: .always),
                    .set(key: untouched, value: "mine".bytes, expiry: .never, condition: .always),
                ])
            }
            guard case .conflicted = attempt else {
                Issue.record("expected a conflict, got \(attempt)")
                return
            }
            #expect(try await t.broker.string(key) == "intruder")
            #expect(try await t.broker.get(untouched) == nil)
        },
        ConformanceCase("transaction: writes by another client, deletes, and creating a missing key conflict") { t async throws in
            let written = t.key("written"), deleted = t.key("deleted"), created = t.key("created")
            try await t.broker.set(written, to: "v")
            try await t.broker.set(deleted, to: "v")
            for key in [written, deleted, created] {
                let attempt = try await t.broker.attemptTransaction(watching: [key]) {
                    // The watch protects what the body read (it may begin with that read).
                    _ = try await t.broker.get(key)
                    switch key {
                    case written: try await t.peer.set(written, to: "same length")
                    case deleted: try await t.peer.delete(deleted)
                    default: try await t.peer.set(created, to: "new")
                    }
                    return Transaction(commands: [.increment(key: t.key("applied"), by: 1)])
                }
                guard case .conflicted = attempt else {
                    Issue.record("\(key): expected a conflict, got \(attempt)")
                    continue
                }
            }
            #expect(try await t.broker.get(t.key("applied")) == nil)
        },
        ConformanceCase("transaction: a pipelined read in the body is watched, and a body may read concurrently") { t async throws in
            let key = t.key("k"), other = t.key("other")
            try await t.broker.set(key, to: "v")
            let attempt = try await t.broker.attemptTransaction(watching: [key, other]) {
                // Several reads at once (child tasks inherit the body's connection on Redis).
                async let first = t.broker.execute([.get(key: key), .get(key: other)], atomically: false)
                async let second = t.broker.get(key)
                let (pipelined, single) = try await (first, second)
                #expect(try pipelined[0].value() == "v".bytes)
                #expect(single == "v".bytes)
                try await t.peer.set(other, to: "intruder")
                return Transaction(commands: [.set(key: key, value: "mine".bytes, expiry: .never, condition: .always)])
            }
            guard case .conflicted = attempt else {
                Issue.record("expected a conflict, got \(attempt)")
                return
            }
            #expect(try await t.broker.string(key) == "v")
        },
        ConformanceCase("transaction: an error thrown by the body applies nothing and propagates") { t async throws in
            let key = t.key("k")
            struct Refused: Error {}
            await #expect(throws: Refused.self) {
                _ = try await t.broker.attemptTransaction(watching: [key]) { () async throws -> Transaction<Void> in
                    throw Refused()
                }
            }
            #expect(try await t.broker.get(key) == nil)
            // The broker is still usable for transactions afterwards.
            let (value, _) = try await t.broker.transaction(watching: [key]) {
                Transaction(commands: [.set(key: key, value: "ok".bytes, expiry: .never, condition: .always)], value: 7)
            }
            #expect(value == 7)
            #expect(try await t.broker.string(key) == "ok")
        },
    ]
}
