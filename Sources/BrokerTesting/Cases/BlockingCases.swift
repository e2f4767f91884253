import Broker
import Testing

/// Blocking pops and moves (`BRPOP`/`BLPOP`, `BLMOVE`): timeouts, wake-ups, several queues,
/// first-come first-served waiters, cancellation.
extension BrokerConformance {
    static let blockingCases: [ConformanceCase] = [
        ConformanceCase("blocking: a pop or move on empty queues times out with nil") { t async throws in
            let queue = t.key("q"), other = t.key("other"), destination = t.key("destination")
            try await withDeadline("the 100 ms timeouts to pass") { () async throws in
                #expect(try await t.broker.blockingPop(from: .tail, of: queue, timeout: .milliseconds(100)) == nil)
                #expect(try await t.broker.blockingPop(from: .head, of: [queue, other], timeout: .milliseconds(100)) == nil)
                #expect(
                    try await t.broker.blockingMove(
                        from: queue, .tail, to: destination, .head, timeout: .milliseconds(100)) == nil)
            }
            #expect(try await t.broker.timeToLive(of: destination) == .missing)
        },
        ConformanceCase("blocking: a value already there is taken at once, FIFO after LPUSH") { t async throws in
            let queue = t.key("q")
            try await t.broker.push(["1", "2", "3"].map(\.bytes), to: .head, of: queue)
            for expected in ["1", "2", "3"] {
                let value = try await t.broker.blockingPop(from: .tail, of: queue, timeout: .seconds(5))
                #expect(value?.text == expected)
            }
            #expect(try await t.broker.timeToLive(of: queue) == .missing)
        },
        ConformanceCase("blocking: a waiting pop is woken by a later push from another client") { t async throws in
            let queue = t.key("q")
            let started = Mailbox<Bool>()
            let popped = try await withDeadline("the waiting pop to receive the pushed value") {
                try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                    group.addTask {
                        started.send(true)
                        return try await t.broker.blockingPop(from: .tail, of: queue, timeout: .seconds(10))
                    }
                    _ = await started.next()
                    try await t.letWaitersRegister()
                    try await t.peer.push("wake", to: .head, of: queue)
                    return try await group.next() ?? nil
                }
            }
            #expect(popped?.text == "wake")
            #expect(try await t.broker.length(of: queue) == 0)
        },
        ConformanceCase("blocking: a waiting move is woken by a push and lands in the destination") { t async throws in
            let source = t.key("source"), destination = t.key("destination")
            let started = Mailbox<Bool>()
            let moved = try await withDeadline("the waiting move to take the pushed value") {
                try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                    group.addTask {
                        started.send(true)
                        return try await t.broker.blockingMove(
                            from: source, .tail, to: destination, .head, timeout: .seconds(10))
                    }
                    _ = await started.next()
                    try await t.letWaitersRegister()
                    try await t.peer.push("job", to: .head, of: source)
                    return try await group.next() ?? nil
                }
            }
            #expect(moved?.text == "job")
            #expect(try await t.contents(of: destination) == ["job"])
            #expect(try await t.broker.timeToLive(of: source) == .missing)
        },
        ConformanceCase("blocking: with several queues the first non-empty in argument order wins") { t async throws in
            let first = t.key("first"), second = t.key("second"), third = t.key("third")
            try await t.broker.push("b", to: .head, of: second)
            try await t.broker.push("c", to: .head, of: third)
            let taken = try await t.broker.blockingPop(from: .tail, of: [first, second, third], timeout: .seconds(5))
            #expect(taken == PoppedValue(queue: second, value: "b".bytes))
            let next = try await t.broker.blockingPop(from: .tail, of: [first, second, third], timeout: .seconds(5))
            #expect(next == PoppedValue(queue: third, value: "c".bytes))
            // Waiting on several: the queue pushed to is the one reported.
            let started = Mailbox<Bool>()
            let woken = try await withDeadline("the multi-queue waiter to be woken") {
                try await withThrowingTaskGroup(of: PoppedValue?.self) { group in
                    group.addTask {
                        started.send(true)
                        return try await t.broker.blockingPop(from: .tail, of: [first, second], timeout: .seconds(10))
                    }
                    _ = await started.next()
                    try await t.letWaitersRegister()
                    try await t.peer.push("late", to: .head, of: second)
                    return try await group.next() ?? nil
                }
            }
            #expect(woken == PoppedValue(queue: second, value: "late".bytes))
        },
        ConformanceCase("blocking: waiters are served first come, first served") { t async throws in
            let queue = t.key("q")
            try await withDeadline("three rounds of three waiters", within: .seconds(20)) {
                // Round 1: one push per value; round 2: one push of three values serves all three.
                for round in 1...2 {
                    let reports = Mailbox<WaiterReport>()
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for waiter in 1...3 {
                            let started = Mailbox<Bool>()
                            let client = waiter == 2 ? t.peer : t.broker
                            group.addTask {
                                started.send(true)
                                let value = try await client.blockingPop(from: .tail, of: queue, timeout: .seconds(10))
                                reports.send(WaiterReport(waiter: waiter, value: value?.text))
                            }
                            _ = await started.next()
                            try await t.letWaitersRegister()
                        }
                        var served: [WaiterReport] = []
                        if round == 1 {
                            for item in 1...3 {
                                try await t.peer.push("v\(item)", to: .head, of: queue)
                                served.append(try await reports.receive("a waiter to receive v\(item)"))
                            }
                        } else {
                            try await t.peer.push(["v1", "v2", "v3"].map(\.bytes), to: .head, of: queue)
                            for _ in 1...3 { served.append(try await reports.receive("the waiters to be served")) }
                            served.sort { $0.waiter < $1.waiter }
                        }
                        #expect(
                            served == (1...3).map { WaiterReport(waiter: $0, value: "v\($0)") },
                            "round \(round): the first waiter gets the first value")
                        try await group.waitForAll()
                    }
                }
            }
            #expect(try await t.broker.length(of: queue) == 0)
        },
    ]
}
