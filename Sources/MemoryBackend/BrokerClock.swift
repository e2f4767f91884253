/// The broker's view of time: a monotonic offset from the broker's creation, and a way to
/// sleep on the same clock.
///
/// Wrapping the injected `Clock` in two closures keeps `MemoryBroker` non-generic (callers
/// write `MemoryBroker()`) while tests still drive time by hand with a manual clock.
struct BrokerClock: Sendable {
    /// Time elapsed since the broker was made, on the injected clock.
    let now: @Sendable () -> Duration
    /// Sleeps for a duration on the injected clock; throws when the task is cancelled.
    let sleep: @Sendable (Duration) async throws -> Void

    init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let start = clock.now
        now = { start.duration(to: clock.now) }
        sleep = { duration in try await clock.sleep(for: duration) }
    }
}
