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
        ("redis://host/0?user=a@b", "redis://host/0?user=a@b"),  // an @ after the authority is not a credential
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
        let queryAt = try RedisConfiguration(url: "redis://host/3?user=a@b")  // an @ in an ignored query
        #expect(queryAt.host == "host" && queryAt.database == 3 && queryAt.password == nil)
        let user = try RedisConfiguration(url: "redis://us%3Aer:pw@host:7000")
        #expect(user.username == "us:er" && user.password == "pw" && user.port == 7000)
    }
}
