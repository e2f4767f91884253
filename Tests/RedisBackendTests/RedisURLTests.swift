import Broker
import RedisBackend
import Testing

/// What a Redis URL shows in banners and errors: never its credentials.
@Suite("Redis URLs")
struct RedisURLTests {
    @Test(arguments: [
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ("redis://:secret@host:6379/2", "redis://***@host:6379/2"),
        ("redis://user:x@TOPSECRET@host:6379", "redis://***@host:6379"),  // an unencoded @ in the password
        ("redis://user:p%40ss@host", "redis://***@host"),
        ("redis://host/0?client_name=a@b", "redis://host/0?client_name=a@b"),  // an @ after the authority is not a credential
    ])
    func credentialsAreHidden(url: String, shown: String) throws {
        #expect(RedisConfiguration.redacted(url) == shown)
    }

    /// The parser reads the credentials to the same `@` that redaction hides up to.
    @Test func aPasswordWithAnAtIsReadWhole() throws {
        let configuration = try RedisConfiguration(url: "redis://user:x@TOPSECRET@host:6379")
        #expect(configuration.password == "x@TOPSECRET" && configuration.host == "host")
    }

    @Test func errorsDoNotEchoThePassword() {
        for url in ["http://user:hunter2@host", "redis://user:hunter2@host:notaport", "redis://user:hunter2@:6379"] {
            do {
                _ = try RedisConfiguration(url: url)
                Issue.record("accepted \(url)")
            } catch {
                #expect(!error.message.contains("hunter2"), "\(error.message)")
            }
        }
    }

    /// An unencoded `/` or `?` in the credentials cuts the authority short; the error says to
    /// percent-encode them instead of blaming a "database" made of the password's tail.
    @Test(arguments: [
        ("redis://:hunter@2:w/TOPSECRET@127.0.0.1:6405", ["hunter", "TOPSECRET"]),  // `/` in the password
        ("redis://SOMEONE/x:hunter2@host:6379", ["SOMEONE", "hunter2"]),  // `/` in the user name
        ("redis://:hunter?TOPSECRET@host:6379", ["hunter", "TOPSECRET"]),  // `?` in the password
        ("redis://user:hunter/TOPSECRET@host:6379/2", ["hunter", "TOPSECRET"]),
    ])
    func unencodedCredentialsAreNamedNotEchoed(url: String, secrets: [String]) {
        do {
            let configuration = try RedisConfiguration(url: url)
            Issue.record("accepted \(url) as \(configuration.address)")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("percent-encoded") && error.message.contains("%2F"), "\(error.message)")
            for secret in secrets {
                #expect(!error.message.contains(secret), "'\(secret)' in: \(error.message)")
            }
        }
    }

    /// The check above must not turn away URLs that were read right before.
    @Test func encodedAndHarmlessCredentialsStillParse() throws {
        let encoded = try RedisConfiguration(url: "redis://:p%2Fss%3Fw%23d%40@host:6379/2")
        #expect(encoded.password == "p/ss?w#d@" && encoded.host == "host" && encoded.database == 2)
        let hash = try RedisConfiguration(url: "redis://:pa#ss@host")  // `#` has no meaning to this parser
        #expect(hash.password == "pa#ss" && hash.host == "host")
        let queryAt = try RedisConfiguration(url: "rediss://host/3?ssl_ca_certs=/certs/a@b.pem")  // an @ in the query
        #expect(queryAt.host == "host" && queryAt.database == 3 && queryAt.password == nil)
        #expect(queryAt.tls?.caFile == "/certs/a@b.pem")
        let user = try RedisConfiguration(url: "redis://us%3Aer:pw@host:7000")
        #expect(user.username == "us:er" && user.password == "pw" && user.port == 7000)
    }

    // MARK: Query parameters (redis-py's names)

    @Test func theDatabaseMayBeAParameter() throws {
        #expect(try RedisConfiguration(url: "redis://host?db=4").database == 4)
        #expect(try RedisConfiguration(url: "redis://host:7000/4?db=4").database == 4)  // both, agreeing
        #expect(try RedisConfiguration(url: "redis://host/?db=5").database == 5)
        #expect(try RedisConfiguration(url: "redis://host?").database == 0)  // an empty query
    }

    @Test(arguments: [
        ("redis://host/2?db=3", "database 2 in its path and 3 in db="),
        ("redis://host?db=x", "db is a database number, got 'x'"),
        ("redis://host?db=-1", "db is a database number"),
        ("redis://host?db", "db needs a value"),
        ("redis://host?db=", "db needs a value"),
        ("redis://host?db=1&db=1", "gives db more than once"),
        ("redis://host?protocol=3", "RESP2 only"),
        ("redis://host?socket_timeout=0", "socket_timeout is a number of seconds above 0, got '0'"),
        ("redis://host?socket_connect_timeout=soon", "socket_connect_timeout is a number of seconds"),
        ("redis://host?socket_timeout=nan", "socket_timeout is a number of seconds"),
        ("redis://host?health_check_interval=-5", "health_check_interval is a number of seconds"),
        ("redis://host?health_check_interval=often", "health_check_interval is a number of seconds"),
        ("redis://host?client_name=my%20app", "client_name takes printable ASCII without spaces"),
        ("redis://host?ssl_ca_certs=/ca.pem", "ssl_ca_certs is for TLS: use a rediss:// URL"),
        ("rediss://host?ssl_cert_reqs=maybe", "ssl_cert_reqs is required, optional or none (or CERT_REQUIRED, …), got 'maybe'"),
        ("rediss://host?ssl_check_hostname=maybe", "ssl_check_hostname is true or false, got 'maybe'"),
        ("redis://host?ssl_check_hostname=false", "ssl_check_hostname is for TLS"),
        ("unix://", "names the socket's absolute path"),
        ("unix:///", "names the socket's path"),
        ("unix://tmp/redis.sock", "has no host: write unix:///path/to/redis.sock"),
        ("unix://localhost/tmp/redis.sock", "has no host"),
        ("unix:///tmp/redis.sock?ssl_ca_certs=/ca.pem", "ssl_ca_certs is for TLS"),
        ("redis://:s3cr1@host?password=s3cr2", "gives a password both before its @ and in password="),
        ("http://host", "unix:// for a socket"),
    ])
    func aBadURLOrParameterIsExplained(url: String, message: String) {
        do {
            let configuration = try RedisConfiguration(url: url)
            Issue.record("accepted \(url) as \(configuration.address)")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains(message), "\(error.message)")
            #expect(!error.message.contains("s3cr"), "\(error.message)")
        }
    }

    /// Silently ignoring a parameter would hide its intent (`?dB=2` writing to database 0), so
    /// an unknown one is refused; its name and value are not echoed: either may be a secret.
    @Test(arguments: [("redis://host?passwd=hunter2", "passwd"), ("redis://host/1?dB=hunter2", "dB"), ("redis://host?hunter2", "")])
    func anUnknownParameterIsRefusedWithoutEchoingIt(url: String, name: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("accepted \(url)")
        } catch {
            #expect(error.message.contains("not one Switchboard reads"), "\(error.message)")
            #expect(error.message.contains(RedisConfiguration.urlParameters.joined(separator: ", ")))
            #expect(!error.message.contains("hunter2") && (name.isEmpty || !error.message.contains(name)), "\(error.message)")
        }
    }

    @Test func tlsAndTimeoutParametersAreApplied() throws {
        let configuration = try RedisConfiguration(
            url: "rediss://:pw@host:6380/1?ssl_ca_certs=%2Fetc%2Fmy%20ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem"
                + "&socket_connect_timeout=0.25&socket_timeout=7&protocol=2")
        #expect(configuration.tls == RedisTLS(caFile: "/etc/my ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem"))
        #expect(configuration.connectTimeout == .milliseconds(250) && configuration.commandTimeout == .seconds(7))
        #expect(configuration.database == 1 && configuration.password == "pw" && configuration.port == 6380)
        for (value, verifies) in [
            ("none", false), ("NONE", false), ("CERT_NONE", false), ("required", true), ("optional", true),
            ("CERT_REQUIRED", true), ("cert_optional", true),
        ] {
            let tls = try RedisConfiguration(url: "rediss://host?ssl_cert_reqs=\(value)").tls
            #expect(tls?.verifiesCertificate == verifies, "\(value)")
        }
        for (value, verifies) in [("false", false), ("False", false), ("0", false), ("true", true), ("1", true)] {
            let tls = try RedisConfiguration(url: "rediss://host?ssl_check_hostname=\(value)").tls
            #expect(tls?.verifiesHostname == verifies && tls?.verifiesCertificate == true, "\(value)")
        }
    }

    /// redis-py's health checks map to keep-alive PINGs (0: none, as in redis-py), its
    /// client name to the prefix of the connections' names.
    @Test func healthCheckAndClientNameParametersAreApplied() throws {
        let defaults = try RedisConfiguration(url: "redis://host")
        #expect(defaults.keepAliveInterval == .seconds(30) && defaults.clientName == "switchboard")
        let given = try RedisConfiguration(url: "redis://host?health_check_interval=15&client_name=billing-gw%3A1")
        #expect(given.keepAliveInterval == .seconds(15) && given.clientName == "billing-gw:1")
        #expect(try RedisConfiguration(url: "redis://host?health_check_interval=0.5").keepAliveInterval == .milliseconds(500))
        #expect(try RedisConfiguration(url: "redis://host?health_check_interval=0").keepAliveInterval == nil)
        #expect(try RedisConfiguration(url: "redis://host?health_check_interval=0.0").keepAliveInterval == nil)
    }

    // MARK: unix:// (redis-py's form)

    @Test func aUnixURLNamesTheSocket() throws {
        let plain = try RedisConfiguration(url: "unix:///run/redis/redis.sock")
        #expect(plain.socketPath == "/run/redis/redis.sock" && plain.database == 0 && plain.password == nil)
        #expect(plain.address == "unix:///run/redis/redis.sock?db=0")
        let full = try RedisConfiguration(url: "UNIX://alice:p%2Fw@/tmp/my%20redis.sock?db=3&socket_timeout=2")
        #expect(full.socketPath == "/tmp/my redis.sock" && full.username == "alice" && full.password == "p/w")
        #expect(full.database == 3 && full.commandTimeout == .seconds(2) && full.tls == nil)
        let lone = try RedisConfiguration(url: "unix://secret@/tmp/redis.sock")  // as redis-cli reads a lone credential
        #expect(lone.password == "secret" && lone.username == nil)
        let query = try RedisConfiguration(url: "unix:///tmp/redis.sock?username=bob&password=pw")
        #expect(query.username == "bob" && query.password == "pw" && query.socketPath == "/tmp/redis.sock")
        #expect(try RedisConfiguration(url: "redis://host?password=pw").password == "pw")
        #expect(try RedisConfiguration(url: "redis://:pw@host?password=pw").password == "pw")  // the same twice
        // A path, not a database: after the host-less authority everything is the socket's path.
        #expect(try RedisConfiguration(url: "unix:///tmp/redis.sock/2").socketPath == "/tmp/redis.sock/2")
    }

    @Test(arguments: [
        ("unix://:hunter2@/tmp/redis.sock", "unix://***@/tmp/redis.sock"),
        ("unix:///tmp/redis.sock?db=1&password=hunter2", "unix:///tmp/redis.sock?db=1&password=***"),
        ("redis://host?pass%77ord=hunter2&db=2", "redis://host?password=***&db=2"),
        ("redis://host?db=2&password", "redis://host?db=2&password"),  // nothing to hide
        ("rediss://host?ssl_keyfile=/k.pem&ssl_password=hunter2", "rediss://host?ssl_keyfile=/k.pem&ssl_password=***"),
        // A parameter this version does not read may be a misspelt secret: hidden, name and value.
        ("redis://host?db=2&pasword=hunter2&client_name=api", "redis://host?db=2&***&client_name=api"),
        ("redis://host?hunter2", "redis://host?***"),
    ])
    func aPasswordParameterIsHidden(url: String, shown: String) {
        #expect(RedisConfiguration.redacted(url) == shown)
    }

    /// A configuration printed (a log line, a debugger) shows no secret.
    @Test func aPrintedConfigurationHidesItsSecrets() throws {
        let configuration = try RedisConfiguration(
            url: "rediss://alice:hunter2@host:6380/2?ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_password=hunter3")
        let printed = "\(configuration)"
        #expect(printed == "rediss://host:6380/2, user alice, password ***, TLS certificate /c.pem key /k.pem (passphrase ***)")
        #expect(!String(describing: [configuration]).contains("hunter"))
    }
}
