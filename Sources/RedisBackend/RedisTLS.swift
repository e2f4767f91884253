public import Broker
import NIOSSL

/// TLS to the Redis server (`rediss://`), as managed services such as Upstash require.
///
/// The server's certificate is always verified: its chain against the trusted CAs, and its
/// names against the URL's host (a host given as an IP address must be among the certificate's
/// IP addresses). There is deliberately no switch to turn verification off.
public struct RedisTLS: Sendable, Hashable {
    /// A PEM file of the CA certificates that may sign the server's certificate, for a server
    /// with a private CA; `nil` trusts the system's CAs (`/etc/ssl/certs`, the usual case for
    /// a managed Redis). Read at every connection, so a renewed file is picked up on reconnect.
    public var caFile: String?

    public init(caFile: String? = nil) {
        self.caFile = caFile
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
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw BrokerError(.invalidArgument, "redis: cannot read CA certificates from \(caFile): \(error)")
        }
        guard !certificates.isEmpty else {
            throw BrokerError(.invalidArgument, "redis: \(caFile) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        return .certificates(certificates)
    }
}
