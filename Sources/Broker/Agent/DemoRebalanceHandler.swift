/// The original system's demo job (SPEC §4): takes a 2 % fee from `payload.amount`.
///
/// `payload.amount > 0` is checked as the original's JavaScript checked it, so the string an
/// HTML form sends (`"100"`) is an amount of 100 (``JSONValue/javaScriptNumber``), and
/// `originalAmount` echoes the value as given; else the job fails permanently with "Invalid
/// amount". One difference: an infinite amount (`"Infinity"`) is refused, where the original
/// answered a fee of `null`. A numeric `payload.delayMs` (capped at 60,000) makes the job take
/// that long first, to try long jobs, lease renewal and graceful shutdown.
public struct DemoRebalanceHandler: JobHandler {
    /// The longest `delayMs` honoured.
    public static let maximumDelayMilliseconds = 60_000.0

    public init() {}

    public func handle(_ job: JobRecord) async throws -> JSONValue {
        guard let original = job.payload["amount"], case let amount = original.javaScriptNumber, amount.isFinite, amount > 0
        else {
            throw JobFailure.permanent("Invalid amount")
        }
        if let delay = job.payload["delayMs"]?.doubleValue, delay.isFinite, delay > 0 {
            let milliseconds = min(delay, Self.maximumDelayMilliseconds)
            try await Task.sleep(for: .microseconds(Int64(milliseconds * 1000)))
        }
        let fee = amount * 0.02
        return [
            "success": true,
            "originalAmount": original,
            "fee": .number(fee),
            "remainingAmount": .number(amount - fee),
            "processedAt": .string(Timestamp.now().iso8601),
        ]
    }
}
