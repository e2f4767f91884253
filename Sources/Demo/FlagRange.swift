import ArgumentParser

/// The ranges numeric flags of `serve` and `agent` must fall in, checked in `validate()` so that
/// a value out of range stops the command with one line naming the flag, instead of trapping
/// later (`1e300` seconds in 64-bit milliseconds) or being replaced silently by a default.
enum FlagRange {
    /// The seconds a duration flag of `serve` or `agent` may be given.
    ///
    /// From 0.1 s: every one of these times a network exchange (a lease renewal, a ping and its
    /// answer, a request head, a drain); below a tenth of a second a scheduling hiccup on a loaded
    /// machine already exceeds it, so a smaller value is a unit mistake (milliseconds typed as
    /// seconds), not a setting. Up to one day: past that a timeout guards nothing (a job silent
    /// for a day is dead, a connection idle for a day is a leak), and every value stays far
    /// inside what it becomes: 64-bit milliseconds, and Engine.IO's `pingInterval` in a
    /// JavaScript timer (at most 2^31 ms, about 24.8 days).
    static let seconds: ClosedRange<Double> = 0.1...86_400

    /// Checks a flag's seconds: a finite number within `range` passes, and so does 0 when the
    /// flag gives zero a meaning of its own (`zero`, "no PING", say); anything else (negative,
    /// `nan`, `inf`, `1e300`) throws a one-line error naming the flag and what it accepts.
    static func check(
        seconds: Double, flag: String, in range: ClosedRange<Double> = FlagRange.seconds, zero: String? = nil
    ) throws {
        if zero != nil, seconds == 0 { return }
        // `nan` is in no range: every comparison with it is false.
        guard range.contains(seconds) else {
            let bounds = "from \(shown(range.lowerBound)) to \(shown(range.upperBound)) seconds"
            let accepted = zero.map { "0 (\($0)) or \(bounds)" } ?? bounds
            throw ValidationError("\(flag) must be \(accepted), not \(shown(seconds))")
        }
    }

    /// Checks a whole-number flag: a value within `range` passes, others throw a one-line error
    /// naming the flag and the range.
    static func check(_ value: Int, flag: String, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("\(flag) must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
        }
    }

    /// `86400` rather than `86400.0`; other values as Swift prints them (`0.1`, `1e+300`, `nan`).
    private static func shown(_ value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
