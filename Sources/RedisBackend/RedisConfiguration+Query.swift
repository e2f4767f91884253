public import Broker

extension RedisConfiguration {
    /// The URL query parameters ``init(url:)`` reads, spelled as redis-py's `from_url` spells
    /// them, so that a URL written for a Python service works here unchanged.
    public static let urlParameters = [
        "db", "username", "password", "protocol", "socket_connect_timeout", "socket_timeout",
        "health_check_interval", "client_name", "ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile",
        "ssl_password", "ssl_check_hostname",
    ]

    /// Applies a URL's query (the text after `?`) to a configuration parsed from the rest of
    /// it. `pathDatabase` is the database the URL's path gave, if it gave one.
    ///
    /// Every parameter is either applied or refused: one that was silently ignored (a `?db=2`
    /// leaving the data in database 0, a CA file left out of the trust store) would fail later
    /// and far from its cause.
    mutating func apply(query: Substring, pathDatabase: Int?) throws(BrokerError) {
        var seen: Set<String> = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.percentDecoded(parts[0])
            // Only names known here are echoed: a value, or an unknown name, may be a secret.
            guard Self.urlParameters.contains(name) else {
                throw BrokerError(
                    .invalidArgument,
                    "a Redis URL parameter is not one Switchboard reads (it reads "
                        + Self.urlParameters.joined(separator: ", ") + "); remove it or fix its spelling")
            }
            guard parts.count == 2, !parts[1].isEmpty else {
                throw BrokerError(.invalidArgument, "the Redis URL parameter \(name) needs a value (\(name)=…)")
            }
            guard seen.insert(name).inserted else {
                throw BrokerError(.invalidArgument, "the Redis URL gives \(name) more than once")
            }
            try apply(name, Self.percentDecoded(parts[1]), pathDatabase: pathDatabase)
        }
    }

    private mutating func apply(_ name: String, _ value: String, pathDatabase: Int?) throws(BrokerError) {
        switch name {
        case "db":
            guard let number = Int(value), number >= 0 else {
                throw BrokerError(.invalidArgument, "the Redis URL parameter db is a database number, got '\(value)'")
            }
            if let pathDatabase, pathDatabase != number {
                throw BrokerError(
                    .invalidArgument,
                    "the Redis URL names database \(pathDatabase) in its path and \(number) in db=; give one")
            }
            database = number
        case "username", "password":
            // redis-py lets either come as a parameter (its `unix://` examples do); the URL's
            // own credentials are the usual place, and two different answers are refused.
            let given = name == "username" ? username : password
            guard given == nil || given == value else {
                throw BrokerError(.invalidArgument, "the Redis URL gives a \(name) both before its @ and in \(name)=; give one")
            }
            if name == "username" { username = value } else { password = value }
        case "protocol":
            // hiredis 0.14 speaks RESP2 only; a service that insists on 3 must be told, not
            // spoken to in 2 behind the user's back.
            guard value == "2" else {
                throw BrokerError(
                    .invalidArgument, "the Redis URL asks for protocol=\(value); Switchboard speaks RESP2 only (protocol=2)")
            }
        case "socket_connect_timeout":
            connectTimeout = try Self.seconds(value, name)
        case "socket_timeout":
            commandTimeout = try Self.seconds(value, name)
        case "health_check_interval":
            // redis-py pings a connection idle this long before using it; here the idle
            // connection pings by itself (0: never, as redis-py's default).
            keepAliveInterval = Double(value) == 0 ? nil : try Self.seconds(value, name)
        case "client_name":
            guard value.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw BrokerError(
                    .invalidArgument,
                    "the Redis URL parameter client_name takes printable ASCII without spaces (Redis refuses others)")
            }
            clientName = value
        default:
            try applyTLS(name, value)
        }
    }

    private mutating func applyTLS(_ name: String, _ value: String) throws(BrokerError) {
        guard var tls else {
            throw BrokerError(.invalidArgument, "the Redis URL parameter \(name) is for TLS: use a rediss:// URL")
        }
        switch name {
        case "ssl_ca_certs": tls.caFile = value
        case "ssl_certfile": tls.certificateFile = value
        case "ssl_keyfile": tls.keyFile = value
        case "ssl_password": tls.keyPassphrase = value
        case "ssl_check_hostname":
            switch value.lowercased() {
            case "true", "1", "yes": tls.verifiesHostname = true
            case "false", "0", "no": tls.verifiesHostname = false
            default:
                throw BrokerError(.invalidArgument, "the Redis URL parameter ssl_check_hostname is true or false, got '\(value)'")
            }
        default:  // ssl_cert_reqs, as Python's ssl module names its modes (Celery's docs use CERT_…)
            switch value.lowercased() {
            // A client checks the server's certificate either way.
            case "required", "optional", "cert_required", "cert_optional": tls.verifiesCertificate = true
            case "none", "cert_none": tls.verifiesCertificate = false
            default:
                throw BrokerError(
                    .invalidArgument,
                    "the Redis URL parameter ssl_cert_reqs is required, optional or none (or CERT_REQUIRED, …), got '\(value)'")
            }
        }
        self.tls = tls
    }

    private static func seconds(_ text: String, _ name: String) throws(BrokerError) -> Duration {
        guard let seconds = Double(text), seconds.isFinite, seconds > 0, seconds <= 86_400 else {
            throw BrokerError(
                .invalidArgument, "the Redis URL parameter \(name) is a number of seconds above 0, got '\(text)'")
        }
        return .milliseconds(Int64(max(1, (seconds * 1000).rounded())))
    }
}
