extension JSONValue {
    /// The value as a user id: a non-empty string, or an integer (as other software sends a
    /// database id: `jwt.sign({sub: user.id})`, `{"userId": 42}`) read as its decimal text,
    /// which is the room the original's `` `user:${userId}` `` named. Anything else (`true`, an
    /// object, a fraction) names no user: `nil`.
    public var userIdText: String? {
        switch self {
        case .string(let text): return text.isEmpty ? nil : text
        case .integer(let number): return String(number)
        case .number(let number):
            // 42.0 is the integer 42 to JavaScript; only integers a double holds exactly.
            guard number == number.rounded(), abs(number) <= 9_007_199_254_740_992 else { return nil }
            return String(Int64(number))
        default: return nil
        }
    }
}
