public import Broker
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// TLS to the Redis server (`rediss://`), as managed services such as Upstash require.
///
/// The server's certificate is verified by default: its chain against the trusted CAs, and its
/// names against the URL's host (a host given as an IP address must be among the certificate's
/// IP addresses).
public struct RedisTLS: Sendable, Hashable {
    /// A PEM file of the CA certificates that may sign the server's certificate, for a server
    /// with a private CA; `nil` trusts the system's CAs (`/etc/ssl/certs`, the usual case for
    /// a managed Redis). Read at every connection, so a renewed file is picked up on reconnect.
    public var caFile: String?
    /// `false` accepts any certificate: the traffic is encrypted, but anyone on the path can
    /// pose as the server and read it. Only for services that present self-signed certificates
    /// and no CA to trust (Heroku Redis); prefer ``caFile`` whenever there is a CA.
    public var verifiesCertificate: Bool

    public init(caFile: String? = nil, verifiesCertificate: Bool = true) {
        self.caFile = caFile
        self.verifiesCertificate = verifiesCertificate
    }

    /// Reads the CA file now, so that a wrong path or a file that is not PEM is reported at
    /// start rather than as connections that keep failing.
    /// - Throws: ``BrokerError/Code/invalidArgument`` saying what is wrong with the file.
    public func check() throws(BrokerError) {
        _ = try trustRoots()
    }

    /// The trust roots for a client TLS configuration.
    func trustRoots() throws(BrokerError) -> NIOSSLTrustRoots {
        guard let caFile else { return .default }
        guard access(caFile, R_OK) == 0 else {
            throw BrokerError(
                .invalidArgument, "redis: cannot read CA certificates from \(caFile): \(String(cString: strerror(errno)))")
        }
        let certificates = try? NIOSSLCertificate.fromPEMFile(caFile)
        guard let certificates, !certificates.isEmpty else {
            throw BrokerError(.invalidArgument, "redis: \(caFile) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        return .certificates(certificates)
    }
}
