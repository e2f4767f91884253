#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// The gateway could not listen where it was told to: says where and what to do, instead of
/// the socket call's own words (`bind(descriptor:ptr:bytes:): Address already in use`,
/// `SocketAddressError.UnknownHost: …`).
public struct ListenError: Error, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// The `errno` of the failed `bind`; 0 when ``host`` is a name that could not be resolved.
    public let code: Int32
    /// Why ``host`` could not be resolved (the resolver's words), when that is the failure.
    public var unresolved: String?

    public var description: String {
        let place = "cannot listen on \(host):\(port)"
        if let unresolved {
            return "\(place): the host name does not resolve (\(unresolved)); give an address such as 127.0.0.1 or 0.0.0.0, or a name of this machine (--host or HOST)"
        }
        switch code {
        case EADDRINUSE:
            return "\(place): the port is in use by another process; stop it or choose another port (--port or PORT)"
        case EADDRNOTAVAIL:
            return "\(place): no network interface of this machine has that address; use 127.0.0.1, 0.0.0.0 or one of its own addresses (--host or HOST)"
        case EACCES:
            return "\(place): permission denied; ports below 1024 need privileges, so choose a higher port (--port or PORT)"
        default:
            return "\(place): \(String(cString: strerror(code))) (errno \(code))"
        }
    }

    /// The listen failure `error` stands for, if it is one: the errors `bind` gives.
    static func from(_ error: any Error, host: String, port: Int) -> ListenError? {
        if let error = error as? SocketAddressError.UnknownHost {
            return ListenError(host: host, port: port, code: 0, unresolved: error.errorDescription)
        }
        guard let error = error as? IOError, [EADDRINUSE, EADDRNOTAVAIL, EACCES].contains(error.errnoCode) else { return nil }
        return ListenError(host: host, port: port, code: error.errnoCode)
    }
}
