/// How long finished jobs took, from creation (the record's `createdAt`) to the final status
/// applied by this node, as a histogram per outcome (`done`, `error`). Only the node whose
/// transaction applies the final status records it, so summing the nodes counts each job once.
public struct JobDurations: Sendable, Hashable {
    /// Upper bounds of the buckets, in seconds (Prometheus `le`); a last `+Inf` bucket is implied.
    public static let bucketBounds: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800]

    /// One outcome's observations.
    public struct Histogram: Sendable, Hashable {
        /// Observations per bucket (not cumulative); one more than ``bucketBounds`` for `+Inf`.
        public var buckets = [Int](repeating: 0, count: JobDurations.bucketBounds.count + 1)
        public var sumSeconds = 0.0

        /// Observations in all.
        public var count: Int { buckets.reduce(0, +) }

        mutating func observe(_ seconds: Double) {
            let index = JobDurations.bucketBounds.firstIndex { seconds <= $0 } ?? JobDurations.bucketBounds.count
            buckets[index] += 1
            sumSeconds += seconds
        }

        /// Observations at or under each bound, then the total (`+Inf`): Prometheus buckets.
        public var cumulative: [Int] {
            var total = 0
            return buckets.map { total += $0; return total }
        }
    }

    public var done = Histogram()
    public var error = Histogram()

    public init() {}

    /// Records a job that reached `status` (`done` or `error`; others are ignored) after
    /// `seconds` (clamped at 0: clocks of different machines may disagree a little).
    mutating func observe(_ status: JobStatus, seconds: Double) {
        switch status {
        case .done: done.observe(max(0, seconds))
        case .error: error.observe(max(0, seconds))
        default: break
        }
    }
}
