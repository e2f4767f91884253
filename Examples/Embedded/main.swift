// Switchboard embedded: the whole broker in your process, no server to run.
//
//     swift run EmbeddedExample
//
// Everything below goes through the `Broker` protocol, so the same code runs unchanged on
// the Redis backend: only the line that makes `broker` changes.

import Broker
import MemoryBackend

let broker = MemoryBroker()
let queue = "agent:rebalance:jobs"

try await withThrowingTaskGroup(of: Void.self) { group in
    // The broker's run() removes expired keys in the background; in an app, hand the broker
    // to a ServiceGroup instead. Cancelling the task ends it.
    group.addTask { try await broker.run() }

    // 1. A queue: a worker blocks until a job id arrives; the producer pushes one.
    let worker = Task {
        // BRPOP: the producer pushes at the head, so the tail is the oldest job.
        try await broker.blockingPop(from: .tail, of: [queue], timeout: .seconds(5))
    }
    let length = try await broker.push("1731304200000-a7f3e2k", to: .head, of: queue)
    // Like LPUSH, the reply is the length right after the push, before a waiting worker takes it.
    print("pushed a job id (queue length after the push: \(length))")
    if let taken = try await worker.value {
        print("worker took \(String(decoding: taken.value, as: UTF8.self)) from \(taken.queue)")
    }
    print("queue length now: \(try await broker.length(of: queue))")

    // 2. Pub/sub: the subscription exists before the body runs, so nothing is missed.
    try await broker.subscribe(to: "agent:rebalance:status") { subscription in
        let receivers = try await broker.publish(#"{"jobId":"1","status":"done"}"#, to: "agent:rebalance:status")
        print("published a status to \(receivers) subscriber(s)")
        for try await message in subscription {
            print("received on \(message.channel): \(String(decoding: message.payload, as: UTF8.self))")
            break
        }
    }

    // 3. A key with a time to live.
    try await broker.set("agent:rebalance:job:1", to: #"{"status":"created"}"#, expiry: .after(.seconds(86_400)))
    print("job record stored; time to live: \(try await broker.timeToLive(of: "agent:rebalance:job:1"))")
    try await broker.set("short-lived", to: "gone soon", expiry: .after(.milliseconds(20)))
    try await Task.sleep(for: .milliseconds(50))
    print("a key set to live 20 ms, read after 50 ms: \(try await broker.string("short-lived") ?? "nil")")

    // 4. Transactions. An atomic batch applies all commands or none...
    let replies = try await broker.execute(
        [
            .set(key: "counter", value: Array("41".utf8), expiry: .never, condition: .always),
            .increment(key: "counter", by: 1),
            .push([Array("audit: counter set".utf8)], end: .tail, queue: "audit"),
        ],
        atomically: true)
    print("atomic batch replies: \(replies)")
    do {
        _ = try await broker.execute([.increment(key: "counter", by: 1), .pop(end: .head, queue: "counter")], atomically: true)
    } catch let error as BrokerError {
        print("a batch with a failing command changed nothing (\(error.code)); counter is still \(try await broker.string("counter") ?? "nil")")
    }
    // ...and an optimistic transaction reads, decides, and commits only if nobody changed the key meanwhile.
    let (doubled, _) = try await broker.transaction(watching: ["counter"]) {
        let current = Int(try await broker.string("counter") ?? "0") ?? 0
        return Transaction(
            commands: [.set(key: "counter", value: Array(String(current * 2).utf8), expiry: .never, condition: .always)],
            value: current * 2)
    }
    print("transaction committed: counter is now \(doubled)")

    group.cancelAll()
}
print("done")
