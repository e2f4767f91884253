extension Duration {
    /// Whole milliseconds, truncated toward zero and saturating instead of overflowing: how
    /// every backend turns a TTL into Redis's integer milliseconds, so they agree on edge cases
    /// (`.after(.microseconds(500))` is 0 ms, and refused, on both).
    package var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = product.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// Milliseconds rounded up: a short positive wait never becomes 0 (Redis: forever), and a
    /// key reported with a PTTL of 1 or more still exists.
    package var millisecondsRoundedUp: Int64 {
        let whole = wholeMilliseconds
        return whole < .max && self > .milliseconds(whole) ? whole + 1 : whole
    }
}
