public import Broker

/// Where the Redis server is and how the backend talks to it.
///
/// Build it from a URL (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS) with
/// ``init(url:)`` and adjust the other fields in Swift.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// A Unix domain socket to connect to instead of ``host`` and ``port`` (a `unix://` URL),
    /// for a Redis on the same machine (its `unixsocket` setting): no TCP stack in between,
    /// which redis-benchmark measures at about 1.4 times the rate of loopback TCP. No TLS.
    public var socketPath: String?
    /// The ACL user for `AUTH user password`; `nil` uses `AUTH password` (the default user).
    public var username: String?
    public var password: String?
    /// The logical database, selected with `SELECT` on every connection.
    public var database: Int
    /// TLS to the server (`rediss://`); `nil` for plain TCP.
    public var tls: RedisTLS?

    /// How long one connection attempt may take.
    public var connectTimeout: Duration = .seconds(2)
    /// How long a non-blocking command may wait for its reply before the connection is deemed
    /// dead (it is closed and reopened). Blocking commands get their own timeout plus this.
    public var commandTimeout: Duration = .seconds(5)
    /// How many idle dedicated connections (for blocking pops and transactions) are kept open.
    /// More may be open at once while more callers block; extra ones close when returned.
    public var dedicatedPoolSize: Int = 8
    /// The first reconnect delay; it doubles with every failed attempt, up to ``maximumBackoff``,
    /// and each delay is jittered (between half and all of it) so that nodes do not stampede.
    public var initialBackoff: Duration = .milliseconds(50)
    public var maximumBackoff: Duration = .seconds(2)
    /// How long a connection may go without sending a command before it sends a `PING`, so
    /// that a server configured with `timeout N` (which closes clients idle for N seconds) does
    /// not close it: a quiet process's command connection, a subscriber without channels, an
    /// idle dedicated connection. Keep it below the server's `timeout` (commonly 60 to 300 s
    /// where set). `nil` (or zero) sends none; TCP keepalive stays on either way, but Redis
    /// counts only commands. A busy connection never pings. A blocking command (`BLPOP`,
    /// `BLMOVE`) waits on the server at most this long at a time and is then issued again: Redis
    /// spares a blocked client its `timeout` only while it is blocked, so one blocked for
    /// longer could be closed, with the value it was just handed, as soon as it was served. An
    /// unanswered `PING` (or blocking command) resets the connection after
    /// ``commandTimeout`` (past its wait), which also finds a hung server on a quiet connection.
    public var keepAliveInterval: Duration? = .seconds(30)
    /// The prefix of every connection's name in `CLIENT LIST`: `<clientName>-commands`,
    /// `-subscriber`, `-dedicated-<n>`, so that an operator can tell this process's connections
    /// from others'. Printable ASCII without spaces (Redis refuses others at `CLIENT SETNAME`).
    public var clientName = "switchboard"

    public init(host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
                database: Int = 0, tls: RedisTLS? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// `url` with its credentials (user and password) replaced by `***`, for logs and banners.
    /// The credentials end at the last `@` before the path, as the parser reads them, so a
    /// password holding an `@` is hidden whole. Of the query, only parameters this version
    /// reads are shown, the values of `password` and `ssl_password` hidden; any other
    /// parameter is shown as `***`, name and value, since a misspelt one (`pasword=…`) may
    /// hold a secret.
    public static func redacted(_ url: String) -> String {
        let parts = url.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return url }
        var rest = parts[1]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") { rest = "***" + rest[at...] }
        if let mark = rest.firstIndex(of: "?") {
            let pairs = rest[rest.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false).map { pair in
                let name = percentDecoded(pair.prefix { $0 != "=" })
                guard pair.isEmpty || urlParameters.contains(name) else { return Substring("***") }
                return ["password", "ssl_password"].contains(name) && pair.contains("=") ? Substring(name + "=***") : pair
            }
            rest = rest[...mark] + pairs.joined(separator: "&")
        }
        return parts[0] + "://" + rest
    }

    /// Parses `redis://[user:password@]host[:port][/db][?parameters]` (port defaults to 6379, db
    /// to 0), or the same with `rediss://` for TLS with the system's CAs (set ``tls`` for a
    /// private CA), or `unix://[user:password@]/path/to/redis.sock[?parameters]` for a Unix
    /// socket (``socketPath``). The parameters are redis-py's (``urlParameters``): `db`,
    /// `username`, `password`, `protocol=2`, `socket_connect_timeout` and `socket_timeout` in
    /// seconds, `health_check_interval` (seconds, ``keepAliveInterval``; 0 sends no `PING`),
    /// `client_name` (``clientName``), and for `rediss://` `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` (paths),
    /// `ssl_password` (the key's passphrase),
    /// `ssl_cert_reqs=none` (see ``RedisTLS/verifiesCertificate``) and `ssl_check_hostname=false`
    /// (``RedisTLS/verifiesHostname``); any other is refused.
    ///
    /// A user name or password holding `/`, `?`, `#` or `:` (in the user name) must be
    /// percent-encoded; an unencoded `@` in the password is read right (up to the last `@`).
    ///
    /// - Throws: ``BrokerError/Code/invalidArgument`` for anything that is not such a URL.
    public init(url: String) throws(BrokerError) {
        let lowered = url.lowercased()
        let scheme: String
        if lowered.hasPrefix("redis://") {
            scheme = "redis://"
        } else if lowered.hasPrefix("rediss://") {
            scheme = "rediss://"
        } else if lowered.hasPrefix("unix://") {
            scheme = "unix://"
        } else {
            throw BrokerError(
                .invalidArgument,
                "a Redis URL starts with redis:// (rediss:// for TLS, unix:// for a socket), got \(Self.redacted(url))")
        }
        let afterScheme = Substring(url.dropFirst(scheme.count))
        let queryMark = afterScheme.firstIndex(of: "?")
        let beforeQuery = afterScheme[..<(queryMark ?? afterScheme.endIndex)]
        let pathDatabase: Int?
        do throws(BrokerError) {
            if scheme == "unix://" {
                self = try Self.parsedSocket(beforeQuery)
                pathDatabase = nil
            } else {
                (self, pathDatabase) = try Self.parsed(beforeQuery, url: url)
            }
            if scheme == "rediss://" { tls = RedisTLS() }
        } catch {
            // An `@` after the authority is almost always the end of credentials whose `/` or
            // `?` was not percent-encoded, cutting the authority short: the error the split
            // produces (a "database" or "port" made of the password's tail) would mislead and
            // echo part of the secret, so say what to fix and show nothing of the URL.
            let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? afterScheme.endIndex
            if afterScheme[authorityEnd...].contains("@") { throw Self.unencodedCredentials }
            throw error
        }
        if let queryMark { try apply(query: afterScheme[afterScheme.index(after: queryMark)...], pathDatabase: pathDatabase) }
    }

    private static let unencodedCredentials = BrokerError(
        .invalidArgument,
        "the user name or password in the Redis URL must be percent-encoded: write / as %2F, ? as %3F, "
            + "# as %23, @ as %40 (and : in a user name as %3A), e.g. redis://:p%2Fss@host:6379 "
            + "(the URL is not shown because it holds credentials)")

    /// The URL after `redis://` and before its query (`afterScheme`) read into a configuration,
    /// and the database its path names if it names one; `url` whole is for the error messages,
    /// redacted.
    private static func parsed(_ afterScheme: Substring, url: String) throws(BrokerError)
        -> (RedisConfiguration, pathDatabase: Int?)
    {
        var rest = afterScheme
        var database: Int?
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else {
                    throw BrokerError(.invalidArgument, "the database in a Redis URL is a number, got '\(path)'")
                }
                database = number
            }
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            (username, password) = Self.credentials(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var host = String(rest)
        var port = 6379
        if rest.hasPrefix("[") {
            // [IPv6]:port
            guard let close = rest.firstIndex(of: "]") else {
                throw BrokerError(.invalidArgument, "unclosed [ in Redis URL \(Self.redacted(url))")
            }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()) else {
                    throw BrokerError(.invalidArgument, "bad port in Redis URL \(Self.redacted(url))")
                }
                port = number
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let number = Int(rest[rest.index(after: colon)...]) else {
                throw BrokerError(.invalidArgument, "bad port in Redis URL \(Self.redacted(url))")
            }
            port = number
        }
        guard !host.isEmpty else { throw BrokerError(.invalidArgument, "no host in Redis URL \(Self.redacted(url))") }
        guard (1...65535).contains(port) else {
            throw BrokerError(.invalidArgument, "port \(port) out of range in Redis URL \(Self.redacted(url))")
        }
        let configuration = RedisConfiguration(
            host: host, port: port, username: username, password: password, database: database ?? 0)
        return (configuration, database)
    }

    /// `user:password`, `:password` or `password` (as redis-cli reads a lone credential).
    private static func credentials(_ text: Substring) -> (username: String?, password: String?) {
        guard let colon = text.firstIndex(of: ":") else { return (nil, text.isEmpty ? nil : percentDecoded(text)) }
        let user = percentDecoded(text[..<colon])
        return (user.isEmpty ? nil : user, percentDecoded(text[text.index(after: colon)...]))
    }

    /// `[user:password@]/path/to/redis.sock`, what follows `unix://` before the query.
    private static func parsedSocket(_ text: Substring) throws(BrokerError) -> RedisConfiguration {
        guard let slash = text.firstIndex(of: "/") else {
            throw BrokerError(
                .invalidArgument, "a unix:// Redis URL names the socket's absolute path: unix:///path/to/redis.sock")
        }
        var configuration = RedisConfiguration()
        let authority = text[..<slash]
        if !authority.isEmpty {
            guard authority.last == "@" else {
                throw BrokerError(
                    .invalidArgument,
                    "a unix:// Redis URL has no host: write unix:///path/to/redis.sock (three slashes), "
                        + "with any credentials before the path: unix://:password@/path/to/redis.sock")
            }
            (configuration.username, configuration.password) = credentials(authority.dropLast())
        }
        let path = percentDecoded(text[slash...])
        guard path.count > 1 else {
            throw BrokerError(.invalidArgument, "a unix:// Redis URL names the socket's path: unix:///path/to/redis.sock")
        }
        configuration.socketPath = path
        return configuration
    }

    static func percentDecoded(_ text: Substring) -> String {
        let input = Array(text.utf8)
        var bytes: [UInt8] = []
        var index = 0
        while index < input.count {
            if input[index] == UInt8(ascii: "%"), index + 2 < input.count,
                let value = UInt8(String(decoding: input[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                index += 3
            } else {
                bytes.append(input[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The address for logs, without credentials.
    public var address: String {
        if let socketPath { return "unix://\(socketPath)?db=\(database)" }
        return "\(tls == nil ? "redis" : "rediss")://\(host):\(port)/\(database)"
    }
}

extension RedisConfiguration: CustomStringConvertible {
    /// Where and how, without the password: safe for logs (`print(configuration)` included).
    public var description: String {
        var text = address
        if let username { text += ", user \(username)" }
        if password != nil { text += ", password ***" }
        if let tls { text += ", \(tls)" }
        return text
    }
}
