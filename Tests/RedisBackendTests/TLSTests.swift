import Broker
import BrokerTesting
import Foundation
import Logging
import RedisBackend
import Testing

/// `rediss://`: the backend over TLS to a private redis-server that speaks only TLS, with the
/// test CA of `Tests/Fixtures/TLS`. The whole conformance suite runs over it; the server's
/// certificate must be verified (an unknown CA, another host's certificate: refused).
@Suite("Redis over TLS", .enabled(if: RedisServerProcess.isAvailable, "redis-server is not on PATH"))
struct TLSTests {
    @Test(.timeLimit(.minutes(3)))
    func conformanceSuiteOverTLS() async throws {
        let server = try RedisServerProcess()
        try server.startTLS()
        var configuration = try RedisConfiguration(url: "rediss://127.0.0.1:\(server.port)")
        configuration.tls = RedisTLS(caFile: TLSFixtures.caFile)
        // More idle connections than the plain suite keeps: a blocking case whose waiter has to
        // open one pays a TLS handshake, which under the parallel load could outlast the
        // 60 ms the case gives a waiter to register, and the waiters would be served out of order.
        try await runConformanceSuite(over: configuration, warmUp: (48, 16), label: "tls")
        await server.kill()
    }

    @Test(.timeLimit(.minutes(1)))
    func aHostNameIsCheckedAgainstTheCertificate() async throws {
        let server = try RedisServerProcess()
        try server.startTLS()
        try await Self.expectWorkingConnection(
            to: "rediss://localhost:\(server.port)", configure: Self.trustTestCA, "localhost is in the certificate")
        // The closed broker's TLS connections are closed too: redis-cli's is the only one left.
        #expect(await eventually { (try? server.tlsCLI(["INFO", "clients"]))?.contains("connected_clients:1\r") == true },
                "no TLS connection left behind")
        await server.kill()
    }

    @Test(.timeLimit(.minutes(1)))
    func aServerWhoseCAIsNotTrustedIsRefused() async throws {
        let server = try RedisServerProcess()
        try server.startTLS()
        // The system's CAs: the test CA is not among them.
        try await Self.expectRefusal(
            of: "rediss://127.0.0.1:\(server.port)", by: server, saying: "not signed by a trusted CA")
        await server.kill()
    }

    /// Verification turned off (Heroku's self-signed certificates): any certificate, any name.
    @Test(.timeLimit(.minutes(1)))
    func anUnverifiedConnectionTakesAnyCertificate() async throws {
        let server = try RedisServerProcess()
        try server.startTLS(bind: ["127.0.0.1", "127.0.0.2"])
        try await Self.expectWorkingConnection(
            to: "rediss://127.0.0.2:\(server.port)", configure: { $0.tls = RedisTLS(verifiesCertificate: false) },
            "connected without verifying")
        await server.kill()
    }

    @Test(.timeLimit(.minutes(1)))
    func aCertificateForAnotherHostIsRefused() async throws {
        let server = try RedisServerProcess()
        // 127.0.0.2 reaches the same server, but the certificate is for 127.0.0.1 and localhost.
        try server.startTLS(bind: ["127.0.0.1", "127.0.0.2"])
        try await withRedisBroker(url: "rediss://127.0.0.1:\(server.port)", configure: Self.trustTestCA) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "127.0.0.1 is in the certificate")
        }
        try await Self.expectRefusal(
            of: "rediss://127.0.0.2:\(server.port)", configure: Self.trustTestCA, by: server, saying: "not for this host")
        // redis-py's ssl_check_hostname=false skips the name check only: the chain still counts.
        let unchecked = "rediss://127.0.0.2:\(server.port)?ssl_check_hostname=false"
        try await withRedisBroker(url: unchecked + "&ssl_ca_certs=\(TLSFixtures.caFile)") { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the name check was skipped")
        }
        try await Self.expectRefusal(of: unchecked, by: server, saying: "not signed by a trusted CA")
        await server.kill()
    }

    /// A server that asks clients for a certificate (Redis's default once TLS is on) takes one
    /// signed by its CA, and refuses a client without one.
    @Test(.timeLimit(.minutes(1)))
    func aServerThatAsksForAClientCertificateGetsOne() async throws {
        let server = try RedisServerProcess()
        try server.startTLS(askingClientsForCertificates: true)
        try await Self.expectWorkingConnection(
            to: "rediss://127.0.0.1:\(server.port)", configure: Self.presentClientCertificate,
            "connected with a client certificate")
        try await Self.expectRefusal(
            of: "rediss://127.0.0.1:\(server.port)", configure: Self.trustTestCA, by: server,
            saying: "the server asks for a client certificate")
        // The same through redis-py's URL parameters alone, as a URL written for Python has
        // them, with the key encrypted and its passphrase given.
        let url = "rediss://127.0.0.1:\(server.port)/0?ssl_ca_certs=\(TLSFixtures.caFile)"
            + "&ssl_certfile=\(TLSFixtures.clientCertificateFile)&ssl_keyfile=\(TLSFixtures.clientEncryptedKeyFile)"
            + "&ssl_password=\(TLSFixtures.clientKeyPassphrase)"
        try await Self.expectWorkingConnection(to: url, "connected with the URL's files")
        await server.kill()
    }

    /// A server that accepts the TCP connection but never answers the handshake (stopped with
    /// SIGSTOP: the kernel still accepts) fails the attempt within the connect timeout.
    @Test(.timeLimit(.minutes(1)))
    func aHandshakeThatNeverEndsFailsWithinTheConnectTimeout() async throws {
        let server = try RedisServerProcess()
        try server.startTLS()
        try await Self.expectRefusal(
            of: "rediss://127.0.0.1:\(server.port)",
            configure: { Self.trustTestCA(&$0); $0.connectTimeout = .milliseconds(500) }, by: server,
            once: { server.pause() }, saying: "no TLS handshake within the connect timeout")
        server.resume()
        await server.kill()
    }

    /// A plain port given as `rediss://`, or a TLS port as plain `redis://`: a failure, no hang.
    @Test(.timeLimit(.minutes(1)))
    func aSchemeThatDoesNotMatchThePortFails() async throws {
        let tlsServer = try RedisServerProcess()
        try tlsServer.startTLS()
        try await withRedisBroker(url: "rediss://127.0.0.1:\(tlsServer.port)", configure: Self.trustTestCA) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the TLS redis-server came up")
        }
        try await withRedisBroker(url: tlsServer.url) { broker in
            await #expect(throws: BrokerError.self) { try await broker.ping() }
        }
        await tlsServer.kill()

        let server = try RedisServerProcess()
        try server.start()
        try await withRedisBroker(url: server.url) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the plain redis-server came up")
        }
        try await withRedisBroker(
            url: "rediss://127.0.0.1:\(server.port)", configure: { Self.trustTestCA(&$0); $0.connectTimeout = .seconds(1) }
        ) { broker in
            await #expect(throws: BrokerError.self) { try await broker.ping() }
        }
        await server.kill()
    }

    @Test(.timeLimit(.minutes(1)))
    func reconnectsWhenTheServerComesBack() async throws {
        let server = try RedisServerProcess()
        try server.startTLS()
        try await withRedisBroker(url: "rediss://127.0.0.1:\(server.port)", configure: Self.trustTestCA) { broker in
            try await expectReconnect(of: broker, killing: server, channel: "tls:channel") { try server.startTLS() }
        }
        await server.kill()
    }

    @Test func filesAreCheckedWhenAsked() throws {
        try RedisTLS(caFile: TLSFixtures.caFile).check()
        try Self.clientTLS.check()
        try RedisTLS(
            certificateFile: TLSFixtures.clientCertificateFile, keyFile: TLSFixtures.clientEncryptedKeyFile,
            keyPassphrase: TLSFixtures.clientKeyPassphrase
        ).check()
        let (certificate, key) = (TLSFixtures.clientCertificateFile, TLSFixtures.clientKeyFile)
        let cases: [(RedisTLS, String)] = [
            (RedisTLS(caFile: "/nonexistent/ca.pem"), "cannot read the CA file /nonexistent/ca.pem: No such file"),
            // A PEM file, but no certificate in it.
            (RedisTLS(caFile: TLSFixtures.clientKeyFile), "holds no PEM certificate"),
            (RedisTLS(certificateFile: certificate), "a client certificate needs its key"),
            (RedisTLS(keyFile: key), "a client certificate needs its key"),
            (RedisTLS(certificateFile: key, keyFile: key), "holds no PEM certificate"),
            (RedisTLS(certificateFile: certificate, keyFile: TLSFixtures.caFile), "holds no PEM private key"),
            (RedisTLS(certificateFile: certificate, keyFile: "/nonexistent/key.pem"),
             "cannot read the client key file /nonexistent/key.pem"),
            (RedisTLS(certificateFile: certificate, keyFile: TLSFixtures.clientEncryptedKeyFile),
             "readable without a passphrase (-----BEGIN PRIVATE KEY-----); for an encrypted key give its passphrase"),
            (RedisTLS(certificateFile: certificate, keyFile: TLSFixtures.clientEncryptedKeyFile, keyPassphrase: "wrong"),
             "holds no PEM private key that the passphrase given decrypts"),
        ]
        for (tls, message) in cases {
            do {
                try tls.check()
                Issue.record("accepted \(tls)")
            } catch {
                #expect(error.code == .invalidArgument && error.message.contains(message), "\(error.message)")
            }
        }
    }

    private static let clientTLS = RedisTLS(
        caFile: TLSFixtures.caFile, certificateFile: TLSFixtures.clientCertificateFile, keyFile: TLSFixtures.clientKeyFile)

    /// A broker for `url` connects (`what` says why it should), and a value it writes reads back.
    private static func expectWorkingConnection(
        to url: String, configure: (inout RedisConfiguration) -> Void = { _ in }, _ what: Comment
    ) async throws {
        try await withRedisBroker(url: url, configure: configure) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, what)
            let key = "tls:\(UUID().uuidString)"
            try await broker.set(key, to: "yes")
            let value = try await broker.get(key)
            #expect(value == Array("yes".utf8))
        }
    }

    private static func trustTestCA(_ configuration: inout RedisConfiguration) {
        configuration.tls = RedisTLS(caFile: TLSFixtures.caFile)
    }

    private static func presentClientCertificate(_ configuration: inout RedisConfiguration) {
        configuration.tls = clientTLS
    }

    /// Once `server` answers a client that trusts it (and `once` ran), a broker for `url` fails
    /// to connect with a message `saying` why (the slot's error tells the last attempt's failure).
    private static func expectRefusal(
        of url: String, configure: (inout RedisConfiguration) -> Void = { _ in }, by server: RedisServerProcess,
        once: () -> Void = {}, saying reason: String
    ) async throws {
        #expect(await eventually { (try? server.tlsCLI(["PING"]))?.contains("PONG") == true }, "the server came up")
        once()
        try await withRedisBroker(url: url, configure: configure) { broker in
            do {
                try await broker.ping()
                Issue.record("the broker connected")
            } catch let error as BrokerError {
                #expect([.connectionFailed, .connectionLost].contains(error.code), "\(error)")
                #expect(error.message.contains(reason), "\(error.message)")
            }
        }
    }
}

/// The test-only CA and server certificate in `Tests/Fixtures/TLS`.
enum TLSFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/TLS")
    static let caFile = directory.appendingPathComponent("ca.pem").path
    static let serverCertificateFile = directory.appendingPathComponent("server.pem").path
    static let serverKeyFile = directory.appendingPathComponent("server.key").path
    static let clientCertificateFile = directory.appendingPathComponent("client.pem").path
    static let clientKeyFile = directory.appendingPathComponent("client.key").path
    /// `client.key` encrypted with ``clientKeyPassphrase``.
    static let clientEncryptedKeyFile = directory.appendingPathComponent("client-encrypted.key").path
    static let clientKeyPassphrase = "test-passphrase"
}

extension RedisServerProcess {
    /// redis-cli against the TLS port, trusting the fixtures' CA and presenting their client
    /// certificate.
    func tlsCLI(_ arguments: [String]) throws -> String {
        try cli(
            ["--tls", "--cacert", TLSFixtures.caFile, "--cert", TLSFixtures.clientCertificateFile,
             "--key", TLSFixtures.clientKeyFile] + arguments)
    }

    /// Starts the server with only a TLS port (on ``port``), with the fixtures' certificate;
    /// asking clients for certificates signed by the fixtures' CA only when told to.
    func startTLS(bind: [String] = ["127.0.0.1"], askingClientsForCertificates: Bool = false) throws {
        try start(
            ["--port", "0", "--tls-port", String(port), "--bind"] + bind + [
                "--tls-cert-file", TLSFixtures.serverCertificateFile, "--tls-key-file", TLSFixtures.serverKeyFile,
                "--tls-ca-cert-file", TLSFixtures.caFile, "--tls-auth-clients", askingClientsForCertificates ? "yes" : "no",
            ])
    }
}
