import Foundation

/// Durations as people type them on a command line: `30`, `30s`, `15m`, `1h`, `7d` (`--ttl`),
/// and flag seconds such as `--heartbeat 0.5` once ``FlagRange`` has checked them.
enum DurationText {
    /// `nil` for text that is not a whole, non-negative number with an optional unit, or whose
    /// seconds do not fit in 64 bits.
    static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let last = trimmed.last else { return nil }
        let multiplier: Int64
        var digits = trimmed
        switch last {
        case "s": multiplier = 1; digits.removeLast()
        case "m": multiplier = 60; digits.removeLast()
        case "h": multiplier = 3_600; digits.removeLast()
        case "d": multiplier = 86_400; digits.removeLast()
        default: multiplier = 1
        }
        guard let value = Int64(digits), value >= 0 else { return nil }
        let (seconds, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : .seconds(seconds)
    }

    /// A flag's seconds (`--heartbeat 0.5`), to the nearest millisecond. The value must have
    /// passed ``FlagRange/check(seconds:flag:in:)``: one beyond 64-bit milliseconds would trap here.
    static func seconds(_ seconds: Double) -> Duration {
        // Rounded, not truncated: 2.3 * 1000 is 2299.9999999999995.
        .milliseconds(Int64((seconds * 1000).rounded()))
    }
}
