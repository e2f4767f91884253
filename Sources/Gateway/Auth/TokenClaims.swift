public import JWTKit

/// The claims Switchboard reads from a client's token: the user is `publicKey`, else `sub`;
/// `exp`, when present, is enforced. Other claims are ignored (tokens issued by the original
/// system carry more and must still be accepted).
public struct TokenClaims: JWTPayload, Equatable {
    /// The user's public key (the original system's user id).
    public var publicKey: String?
    /// The standard subject claim, used when `publicKey` is absent.
    public var sub: SubjectClaim?
    /// Expiry; a token without it does not expire.
    public var exp: ExpirationClaim?
    /// Issued-at, set by the tokens Switchboard issues.
    public var iat: IssuedAtClaim?

    public init(publicKey: String? = nil, sub: String? = nil, exp: ExpirationClaim? = nil, iat: IssuedAtClaim? = nil) {
        self.publicKey = publicKey
        self.sub = sub.map { SubjectClaim(value: $0) }
        self.exp = exp
        self.iat = iat
    }

    /// The user this token speaks for, if it names one.
    public var userId: String? {
        if let publicKey, !publicKey.isEmpty { return publicKey }
        if let sub, !sub.value.isEmpty { return sub.value }
        return nil
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp?.verifyNotExpired()
    }
}
