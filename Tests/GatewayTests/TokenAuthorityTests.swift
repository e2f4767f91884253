import Crypto
import Foundation
import Gateway
import HTTPTypes
import JWTKit
import Testing

@Suite("Token authority (HS256 JWT)")
struct TokenAuthorityTests {
    let authority: TokenAuthority

    init() async throws {
        authority = try await TokenAuthority(secret: TestGateway.secret)
    }

    /// Signs `claims` with `secret` through jwt-kit directly (what another issuer would do).
    static func sign(_ claims: TokenClaims, secret: String = TestGateway.secret) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    static func base64URL(_ text: String) -> String {
        base64URL(Data(text.utf8))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func expectUnauthorized(_ presented: String?, _ authority: TokenAuthority, message: String? = nil) async {
        do {
            let user = try await authority.authenticate(presented)
            Issue.record("accepted \(presented ?? "nil") as \(user)")
        } catch let error as GatewayError {
            #expect(error.status == .unauthorized)
            if let message { #expect(error.message == message) }
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func issuedTokenNamesItsUser() async throws {
        let token = try await authority.issue(userId: "GXHEXYVepv5EQnhq9VYVWkvW6QDMRj4QZA2B2mmKpCzq", lifetime: .seconds(60))
        #expect(try await authority.authenticate(token) == "GXHEXYVepv5EQnhq9VYVWkvW6QDMRj4QZA2B2mmKpCzq")
    }

    @Test func bearerPrefixAndURLEncodingAreAccepted() async throws {
        let token = try await authority.issue(userId: "alice", lifetime: nil)
        #expect(try await authority.authenticate("Bearer \(token)") == "alice")
        #expect(try await authority.authenticate("bearer \(token)") == "alice")
        #expect(try await authority.authenticate("Bearer%20\(token)") == "alice")
        let encoded = "Bearer \(token)".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(encoded.contains("%"))
        #expect(try await authority.authenticate(encoded) == "alice")
        // A query string's space: URLSearchParams, Python's urlencode and HTML forms write `+`.
        #expect(try await authority.authenticate("Bearer+\(token)") == "alice")
        #expect(try await authority.authenticate("Bearer%2B\(token)") == "alice")
    }

    /// An id that cannot name the user's keys and room is refused at the door (every transport
    /// authenticates here), not let in to a connection no job event would reach.
    @Test(arguments: ["has space", "tab\tin", String(repeating: "k", count: 129), "new\nline"])
    func anUnusableUserIdIsRefused(userId: String) async throws {
        let signed = try await Self.sign(TokenClaims(publicKey: userId))
        await Self.expectUnauthorized(signed, authority, message: TokenAuthority.unusableUserId)
        await #expect(throws: GatewayError.self) { try await authority.issue(userId: userId, lifetime: nil) }
        let longest = try await Self.sign(TokenClaims(publicKey: String(repeating: "k", count: 128)))
        #expect(try await authority.authenticate(longest) == String(repeating: "k", count: 128))
    }

    @Test func publicKeyWinsOverSubject() async throws {
        let both = try await Self.sign(TokenClaims(publicKey: "key-1", sub: "subject-1"))
        #expect(try await authority.authenticate(both) == "key-1")
        let subjectOnly = try await Self.sign(TokenClaims(sub: "subject-2"))
        #expect(try await authority.authenticate(subjectOnly) == "subject-2")
    }

    /// Signed by hand with HS256 and the gateway's secret, as other software signs `payload`.
    static func handSigned(_ payload: String) -> String {
        let signingInput = "\(base64URL(#"{"alg":"HS256","typ":"JWT"}"#)).\(base64URL(payload))"
        let key = SymmetricKey(data: Data(TestGateway.secret.utf8))
        return signingInput + "." + base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: key)))
    }

    /// `jsonwebtoken.sign({sub: user.id})` writes a number; the original made `user:42` of it.
    @Test func anIntegerUserIdIsItsDecimalText() async throws {
        #expect(try await authority.authenticate(Self.handSigned(#"{"sub":42}"#)) == "42")
        #expect(try await authority.authenticate(Self.handSigned(#"{"publicKey":7,"sub":"s"}"#)) == "7")
        #expect(try await authority.authenticate(Self.handSigned(#"{"sub":1234567890123.0}"#)) == "1234567890123")
        // Other types name no user; a usable `sub` still counts when `publicKey` is one of them.
        #expect(try await authority.authenticate(Self.handSigned(#"{"publicKey":true,"sub":"s"}"#)) == "s")
        for payload in [#"{"sub":true}"#, #"{"sub":1.5}"#, #"{"sub":{"id":1}}"#, #"{"sub":null}"#, #"{"sub":[1]}"#] {
            await Self.expectUnauthorized(Self.handSigned(payload), authority, message: "token names no user")
        }
    }

    @Test func tokenWithoutUserIsRefused() async throws {
        let none = try await Self.sign(TokenClaims())
        await Self.expectUnauthorized(none, authority, message: "token names no user")
    }

    @Test func expiredTokenIsRefused() async throws {
        let expired = try await Self.sign(
            TokenClaims(publicKey: "bob", exp: ExpirationClaim(value: Date(timeIntervalSinceNow: -5))))
        await Self.expectUnauthorized(expired, authority, message: "token expired")
        let live = try await Self.sign(
            TokenClaims(publicKey: "bob", exp: ExpirationClaim(value: Date(timeIntervalSinceNow: 60))))
        #expect(try await authority.authenticate(live) == "bob")
    }

    @Test func tokenNotValidYetIsRefused() async throws {
        let early = try await Self.sign(
            TokenClaims(publicKey: "carl", nbf: NotBeforeClaim(value: Date(timeIntervalSinceNow: 60))))
        await Self.expectUnauthorized(early, authority, message: "token not valid yet")
        // As jsonwebtoken: valid from its second on.
        let now = try await Self.sign(
            TokenClaims(publicKey: "carl", nbf: NotBeforeClaim(value: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))))
        #expect(try await authority.authenticate(now) == "carl")
    }

    @Test func wrongKeyIsRefused() async throws {
        let forged = try await Self.sign(
            TokenClaims(publicKey: "mallory"), secret: "another-secret-of-at-least-32-bytes!!")
        await Self.expectUnauthorized(
            forged, authority, message: "invalid token: its signature does not match this server's secret")
    }

    @Test func tamperedPayloadIsRefused() async throws {
        let token = try await authority.issue(userId: "alice", lifetime: nil)
        var parts = token.split(separator: ".").map(String.init)
        parts[1] = Self.base64URL(#"{"publicKey":"mallory","sub":"mallory"}"#)
        await Self.expectUnauthorized(
            parts.joined(separator: "."), authority, message: "invalid token: its signature does not match this server's secret")
    }

    @Test func algorithmNoneIsRefused() async throws {
        let header = Self.base64URL(#"{"alg":"none","typ":"JWT"}"#)
        let payload = Self.base64URL(#"{"publicKey":"mallory"}"#)
        await Self.expectUnauthorized("\(header).\(payload).", authority, message: "invalid token: not signed with HS256")
        await Self.expectUnauthorized("\(header).\(payload)", authority, message: "invalid token: not signed with HS256")
    }

    /// Signed with the right key and HS256, but the header names another algorithm (or none,
    /// or asks for an extension we do not implement): not a valid JWS (RFC 7515 §4.1.1,
    /// §4.1.11), and jsonwebtoken, the original's verifier, refused them. The signature alone
    /// must not make a token whose header says otherwise acceptable.
    @Test(arguments: [
        #"{"alg":"none","typ":"JWT"}"#, #"{"alg":"HS384","typ":"JWT"}"#, #"{"alg":"hs256"}"#, #"{"typ":"JWT"}"#,
        #"{"alg":"RS256"}"#, #"{"alg":"HS256","crit":["exp"]}"#, #"{"alg":["HS256"]}"#, "not json",
    ])
    func aHeaderThatMisstatesTheAlgorithmIsRefused(header: String) async throws {
        let payload = Self.base64URL(#"{"publicKey":"alice"}"#)
        let signingInput = "\(Self.base64URL(header)).\(payload)"
        let signature = Data(HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: Data(TestGateway.secret.utf8))))
        let token = signingInput + "." + Self.base64URL(signature)
        await Self.expectUnauthorized(
            token, authority, message: header == "not json" ? "invalid token: not a JWT" : "invalid token: not signed with HS256")
        // The same, with the header as it should be, is accepted.
        let good = "\(Self.base64URL(#"{"alg":"HS256","typ":"JWT","kid":"any"}"#)).\(payload)"
        let goodSignature = Data(HMAC<SHA256>.authenticationCode(for: Data(good.utf8), using: SymmetricKey(data: Data(TestGateway.secret.utf8))))
        #expect(try await authority.authenticate(good + "." + Self.base64URL(goodSignature)) == "alice")
    }

    @Test(arguments: ["", "   ", "Bearer", "Bearer ", "garbage", "a.b.c", "....", "Bearer %%%"])
    func garbageIsRefused(_ presented: String) async {
        await Self.expectUnauthorized(presented, authority)
    }

    @Test func missingTokenIsRefused() async {
        await Self.expectUnauthorized(nil, authority, message: "missing token")
    }

    @Test func shortSecretIsRefusedAtStart() async throws {
        await #expect(throws: TokenAuthority.WeakSecretError.self) {
            _ = try await TokenAuthority(secret: String(repeating: "x", count: 31))
        }
        do {
            _ = try await TokenAuthority(secret: "short")
        } catch let error as TokenAuthority.WeakSecretError {
            #expect(error.description.contains("at least 32"))
        }
        _ = try await TokenAuthority(secret: String(repeating: "x", count: 32))
    }
}
