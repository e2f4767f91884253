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
    /// `false` checks the server's certificate chain but not that it names the URL's host:
    /// for a server reached by a name or address its certificate does not list (a private
    /// endpoint, an SSH tunnel). Weaker than full verification: any certificate the CAs signed
    /// is accepted. Ignored when ``verifiesCertificate`` is `false`.
    public var verifiesHostname = true
    /// The client's own certificate (PEM, leaf first, then any intermediates) and its private
    /// key (PEM), for a server that asks clients for one: Redis's `tls-auth-clients yes`, its
    /// default once TLS is on. Both or neither.
    public var certificateFile: String?
    public var keyFile: String?
    /// The passphrase of an encrypted ``keyFile`` (`-----BEGIN ENCRYPTED PRIVATE KEY-----`);
    /// `nil` for a key stored in the clear.
    public var keyPassphrase: String?

    public init(
        caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, keyPassphrase: String? = nil,
        verifiesCertificate: Bool = true
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.keyPassphrase = keyPassphrase
        self.verifiesCertificate = verifiesCertificate
    }

    /// Reads the files now, so that a wrong path or a file that is not PEM is reported at
    /// start rather than as connections that keep failing.
    /// - Throws: ``BrokerError/Code/invalidArgument`` saying what is wrong with which file.
    public func check() throws(BrokerError) {
        _ = try clientConfiguration()
    }

    /// The NIOSSL client configuration these settings make.
    func clientConfiguration() throws(BrokerError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = try trustRoots()
        if !verifiesCertificate {
            configuration.certificateVerification = .none
        } else if !verifiesHostname {
            configuration.certificateVerification = .noHostnameVerification
        }
        switch (certificateFile, keyFile) {
        case (nil, nil):
            break
        case (let certificateFile?, let keyFile?):
            try Self.checkReadable(certificateFile, "client certificate file")
            try Self.checkReadable(keyFile, "client key file")
            guard let chain = try? NIOSSLCertificate.fromPEMFile(certificateFile), !chain.isEmpty else {
                throw BrokerError(
                    .invalidArgument, "redis: \(certificateFile) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
            }
            let key = try Self.privateKey(keyFile, passphrase: keyPassphrase)
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        default:
            throw BrokerError(.invalidArgument, "redis: a client certificate needs its key, and a key its certificate")
        }
        return configuration
    }

    private func trustRoots() throws(BrokerError) -> NIOSSLTrustRoots {
        guard let caFile else { return .default }
        try Self.checkReadable(caFile, "CA file")
        let certificates = try? NIOSSLCertificate.fromPEMFile(caFile)
        guard let certificates, !certificates.isEmpty else {
            throw BrokerError(.invalidArgument, "redis: \(caFile) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        return .certificates(certificates)
    }

    private static func privateKey(_ file: String, passphrase: String?) throws(BrokerError) -> NIOSSLPrivateKey {
        guard let passphrase else {
            guard let key = try? NIOSSLPrivateKey(file: file, format: .pem) else {
                throw BrokerError(
                    .invalidArgument,
                    "redis: \(file) holds no PEM private key readable without a passphrase (-----BEGIN PRIVATE KEY-----); "
                        + "for an encrypted key give its passphrase (ssl_password=, env REDIS_KEY_PASSPHRASE)")
            }
            return key
        }
        let bytes = Array(passphrase.utf8)
        guard let key = try? NIOSSLPrivateKey(file: file, format: .pem, passphraseCallback: { $0(bytes) }) else {
            throw BrokerError(.invalidArgument, "redis: \(file) holds no PEM private key that the passphrase given decrypts")
        }
        return key
    }

    private static func checkReadable(_ path: String, _ role: String) throws(BrokerError) {
        guard access(path, R_OK) == 0 else {
            throw BrokerError(.invalidArgument, "redis: cannot read the \(role) \(path): \(String(cString: strerror(errno)))")
        }
    }
}

extension RedisTLS: CustomStringConvertible {
    /// The settings without the key's passphrase: safe for logs.
    public var description: String {
        var parts = ["TLS"]
        if let caFile { parts.append("CA \(caFile)") }
        if let certificateFile { parts.append("certificate \(certificateFile)") }
        if let keyFile { parts.append("key \(keyFile)" + (keyPassphrase == nil ? "" : " (passphrase ***)")) }
        if !verifiesCertificate {
            parts.append("certificate not verified")
        } else if !verifiesHostname {
            parts.append("host name not verified")
        }
        return parts.joined(separator: " ")
    }
}
