import Broker
import BrokerTesting
import MemoryBackend
import Testing

/// The shared broker conformance suite against the in-process backend: each case on a fresh
/// broker, which also serves as its own "peer" (two nodes of one process share one store).
@Suite("MemoryConformance")
struct MemoryConformanceTests {
    @Test(arguments: BrokerConformance.cases)
    func conformance(_ check: ConformanceCase) async throws {
        try await check.run(on: MemoryBroker())
    }
}
