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
}
