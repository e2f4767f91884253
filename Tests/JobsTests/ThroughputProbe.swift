import Broker
import BrokerTesting
import Foundation
import Testing

/// Not a test: a probe of the job path's throughput, run on demand with
/// `SWITCHBOARD_PROBE=1 swift test --filter ThroughputProbe`. Prints figures; asserts only
/// that every job finished.
@Suite("Throughput probe", .enabled(if: ProcessInfo.processInfo.environment["SWITCHBOARD_PROBE"] == "1"))
struct ThroughputProbe {
    @Test(arguments: TestBackend.all)
    func createProcessDone(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            for users in [1, 64] {
                let names = JobNames(prefix: unique("p"))
                let jobs = 3000
                try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                    let router = routers[0]
                    let userIds = (0..<users).map { "u\($0)-\(names.prefix)" }
                    let start = ContinuousClock.now
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for worker in 0..<32 {
                            group.addTask {
                                var index = worker
                                while index < jobs {
                                    _ = try await router.jobs().create(payload: [:], for: userIds[index % users])
                                    // An agent takes a job (the oldest), as in the real system.
                                    let taken = try await broker.pop(from: .tail, of: names.queue)
                                    guard let taken, let job = try await router.jobs().record(String(decoding: taken, as: UTF8.self)) else {
                                        index += 32
                                        continue
                                    }
                                    let user = job.user.publicKey
                                    try await broker.publish(
                                        #"{"jobId":"\#(job.jobId)","status":"processing","userId":"\#(user)"}"#, to: names.statusChannel)
                                    try await broker.publish(
                                        #"{"jobId":"\#(job.jobId)","status":"done","userId":"\#(user)"}"#, to: names.statusChannel)
                                    index += 32
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    try await eventually("all statuses applied", within: .seconds(120)) {
                        router.stats.jobs["rebalance"]!.handled == jobs * 2
                    }
                    let elapsed = ContinuousClock.now - start
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                    let counters = router.stats.jobs["rebalance"]!
                    print("probe \(backend.name) users=\(users): \(jobs) jobs in \(elapsed) = \(Int(Double(jobs) / seconds)) jobs/s; \(counters)")
                    #expect(counters.applied == jobs * 2)
                }
            }
        }
    }
}
