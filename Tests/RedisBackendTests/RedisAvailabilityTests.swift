import Broker
import RedisBackend
import Testing

@Suite("Redis availability")
struct RedisAvailabilityTests {
    /// Under `make test` (SWITCHBOARD_REQUIRE_REDIS=1) a missing or unreachable Redis is a failure,
    /// never a silent skip.
    @Test func redisIsReachableWhenRequired() async throws {
        guard RedisTestServer.required || RedisTestServer.isConfigured else {
            print("note: \(RedisTestServer.skipReason)")
            return
        }
        let url = try #require(RedisTestServer.url, "SWITCHBOARD_REQUIRE_REDIS=1 but SWITCHBOARD_TEST_REDIS_URL is unset")
        try await withRedisBroker(url: url) { broker in
            try await broker.ping()
        }
    }
}
