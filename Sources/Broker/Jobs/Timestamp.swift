#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in milliseconds since the Unix epoch, and its ISO-8601 text
/// (`2025-11-11T10:30:00.000Z`, always UTC, always milliseconds) as job records and events
/// carry it.
///
/// Formatting is plain integer arithmetic into a fixed 24-byte buffer: it runs for every
/// status update and event, so no `DateFormatter`, no locale, no allocation beyond the string.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    /// The current wall-clock time.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(milliseconds: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public var iso8601: String {
        String(unsafeUninitializedCapacity: 24) { buffer in
            writeISO8601(to: buffer)
            return 24
        }
    }

    /// Appends ``iso8601``'s 24 bytes to `output` without making the string (the agent
    /// stamps two status updates per job).
    public func writeISO8601(into output: inout [UInt8]) {
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: 24))
        output.withUnsafeMutableBufferPointer { buffer in
            writeISO8601(to: UnsafeMutableBufferPointer(rebasing: buffer[start..<(start + 24)]))
        }
    }

    /// Writes ``iso8601``'s 24 bytes at the start of `buffer` (which has room for them), for
    /// writers of other buffer types (a gateway's frames); returns 24.
    @discardableResult
    public func writeISO8601(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= 24, "an ISO 8601 timestamp takes 24 bytes")
        writeISO8601(to: buffer.bindMemory(to: UInt8.self))
        return 24
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ` into the first 24 bytes of `buffer`.
    private func writeISO8601(to buffer: UnsafeMutableBufferPointer<UInt8>) {
        let days = Self.floorDivide(milliseconds, 86_400_000)
        let millisecondOfDay = milliseconds - days * 86_400_000
        let (year, month, day) = Self.civilDate(daysSinceEpoch: days)
        let secondOfDay = millisecondOfDay / 1000
        let hour = secondOfDay / 3600
        let minute = secondOfDay % 3600 / 60
        let second = secondOfDay % 60
        let millisecond = millisecondOfDay % 1000
        func put(_ value: Int64, digits: Int, at offset: Int) {
            var value = value
            for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                buffer[index] = UInt8(truncatingIfNeeded: 48 + value % 10)
                value /= 10
            }
        }
        put(year, digits: 4, at: 0)
        buffer[4] = UInt8(ascii: "-")
        put(month, digits: 2, at: 5)
        buffer[7] = UInt8(ascii: "-")
        put(day, digits: 2, at: 8)
        buffer[10] = UInt8(ascii: "T")
        put(hour, digits: 2, at: 11)
        buffer[13] = UInt8(ascii: ":")
        put(minute, digits: 2, at: 14)
        buffer[16] = UInt8(ascii: ":")
        put(second, digits: 2, at: 17)
        buffer[19] = UInt8(ascii: ".")
        put(millisecond, digits: 3, at: 20)
        buffer[23] = UInt8(ascii: "Z")
    }

    public var description: String { iso8601 }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff…]Z` (UTC only, what ``iso8601`` writes and what the
    /// original system's `Date.toISOString()` writes); `nil` for anything else.
    public init?(iso8601 text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z"), bytes[4] == UInt8(ascii: "-"),
            bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
            bytes[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = Int64(bytes[index]) - 48
                guard (0...9).contains(digit) else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var millisecond: Int64 = 0
        if bytes.count > 20 {
            guard bytes[19] == UInt8(ascii: "."), bytes.count > 21 else { return nil }
            let fraction = 20..<(bytes.count - 1)
            guard let digits = number(fraction.prefix(3)), number(fraction) != nil else { return nil }
            millisecond = digits
            for _ in fraction.prefix(3).count..<3 { millisecond *= 10 }
        } else if bytes.count != 20 {
            return nil
        }
        let days = Self.daysSinceEpoch(year: year, month: month, day: day)
        milliseconds = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millisecond
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : (value - divisor + 1) / divisor
    }

    // Howard Hinnant's days-from-civil algorithms: exact for the proleptic Gregorian calendar.
    private static func civilDate(daysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let year = month <= 2 ? year - 1 : year
        let era = floorDivide(year, 400)
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
