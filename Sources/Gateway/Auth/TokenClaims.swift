public import JWTKit
import Broker
import Foundation

/// The claims Switchboard reads from a client's token: the user is `publicKey`, else `sub`;
/// `exp` and `nbf`, when present, are enforced (as `jsonwebtoken.verify` of the original system
/// does, to the second). Other claims are ignored (tokens issued by the original
/// system carry more and must still be accepted).
///
/// `publicKey` and `sub` may be integers, read as their decimal text: RFC 7519 wants a string
/// `sub`, but `jsonwebtoken.sign({sub: user.id})` writes a number and the original used it as
/// `user:42`. Of any other type (`true`, an object) they name no user.
public struct TokenClaims: JWTPayload, Equatable {
    /// The user's public key (the original system's user id).
    public var publicKey: String?
    /// The standard subject claim, used when `publicKey` is absent.
    public var sub: SubjectClaim?
    /// Expiry; a token without it does not expire.
    public var exp: ExpirationClaim?
    /// Issued-at, set by the tokens Switchboard issues.
    public var iat: IssuedAtClaim?
    /// Not-before; a token presented earlier is refused.
    public var nbf: NotBeforeClaim?

    public init(
        publicKey: String? = nil, sub: String? = nil, exp: ExpirationClaim? = nil, iat: IssuedAtClaim? = nil,
        nbf: NotBeforeClaim? = nil
    ) {
        self.publicKey = publicKey
        self.sub = sub.map { SubjectClaim(value: $0) }
        self.exp = exp
        self.iat = iat
        self.nbf = nbf
    }

    private enum CodingKeys: String, CodingKey {
        case publicKey, sub, exp, iat, nbf
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        publicKey = try container.decodeIfPresent(JSONValue.self, forKey: .publicKey)?.userIdText
        sub = try container.decodeIfPresent(JSONValue.self, forKey: .sub)?.userIdText.map { SubjectClaim(value: $0) }
        exp = try container.decodeIfPresent(ExpirationClaim.self, forKey: .exp)
        iat = try container.decodeIfPresent(IssuedAtClaim.self, forKey: .iat)
        nbf = try container.decodeIfPresent(NotBeforeClaim.self, forKey: .nbf)
    }

    /// The user this token speaks for, if it names one.
    public var userId: String? {
        if let publicKey, !publicKey.isEmpty { return publicKey }
        if let sub, !sub.value.isEmpty { return sub.value }
        return nil
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp?.verifyNotExpired()
        // jsonwebtoken refuses `nbf > floor(now)`: a token whose nbf is the current second is
        // already valid (jwt-kit's own check would refuse it until the second has passed).
        if let nbf, nbf.value.timeIntervalSince1970 > Date().timeIntervalSince1970.rounded(.down) {
            throw JWTError.claimVerificationFailure(failedClaim: nbf, reason: "not valid yet")
        }
    }
}
