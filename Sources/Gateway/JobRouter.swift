public import Broker

/// The job router of `Broker` (status channel → events → sessions), named apart from
/// Hummingbird's HTTP `Router`: files that import both modules refer to it by this name.
public typealias JobRouter = Router
