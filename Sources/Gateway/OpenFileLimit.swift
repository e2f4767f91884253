#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit, which bounds the connections a gateway can hold.
public enum OpenFileLimit {
    /// The soft limit in effect; `nil` if it cannot be read.
    public static var current: Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return Int(clamping: limit.rlim_cur)  // RLIM_INFINITY, all ones, clamps to Int.max
    }

    /// Raises the soft limit to the hard one, as Go's runtime does for every server: the soft
    /// default (1024 on most Linux systems) is a guard for old `select()` programs, far below
    /// what a gateway with thousands of clients needs. Returns the soft limit in effect.
    @discardableResult
    public static func raise() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            // An unlimited hard limit cannot be the soft one for descriptors: the kernel's own
            // ceiling (fs.nr_open, 1,048,576 by default) is.
            raised.rlim_cur = limit.rlim_max == rlim_t.max ? 1 << 20 : limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
        }
        return current
    }
}
