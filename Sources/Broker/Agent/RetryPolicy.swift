/// How an agent retries a job whose handler failed transiently: exponential backoff with jitter,
/// up to a number of attempts, after which the job ends in `error` with `attempts`.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included (`1` means no retry).
    public var maxAttempts: Int
    /// The wait before the second attempt.
    public var initialDelay: Duration
    /// The longest wait between two attempts.
    public var maxDelay: Duration
    /// How much each wait grows over the previous one.
    public var multiplier: Double
    /// The fraction of each wait that is random (0: none, 1: "full jitter"). Jitter spreads the
    /// retries of many jobs that failed together, so they do not hit a recovering service at once.
    public var jitter: Double

    public init(
        maxAttempts: Int = 3, initialDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(10),
        multiplier: Double = 2, jitter: Double = 0.5
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = max(.zero, initialDelay)
        self.maxDelay = max(self.initialDelay, maxDelay)
        self.multiplier = max(1, multiplier)
        self.jitter = min(1, max(0, jitter))
    }

    /// No retries: the first transient failure is final.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The wait after failed attempt number `attempt` (1-based), jitter applied.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let base = initialDelay.seconds * pow(multiplier, Double(max(0, attempt - 1)))
        let capped = min(base, maxDelay.seconds)
        let random = jitter > 0 ? Double.random(in: 0...jitter) : 0
        return .nanoseconds(Int64((capped * (1 - random)) * 1e9))
    }
}

extension Duration {
    /// The duration in (fractional) seconds.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    // Integral exponents only (attempt numbers); avoids importing Foundation for one call.
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 && result < 1e12 {
        result *= base
        remaining -= 1
    }
    return result
}
