/// The one error type of every broker operation. ``code`` says what happened and so what
/// to do; ``message`` adds detail for logs.
public struct BrokerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Value: String, Sendable, Hashable {
            case connectionLost, connectionFailed, timedOut, wrongType, notAnInteger
            case invalidArgument, transactionConflict, unexpectedReply, serverError
            case authenticationFailed, unsupported, subscriberOverflow, shutDown, outOfMemory, readOnly
        }
        fileprivate let value: Value

        /// The connection to the backend broke or is not up. Retry later; the backend reconnects.
        public static let connectionLost = Code(value: .connectionLost)
        /// The backend could not be reached at all (refused, bad address). Check configuration.
        public static let connectionFailed = Code(value: .connectionFailed)
        /// The backend did not answer in time. Retry later.
        public static let timedOut = Code(value: .timedOut)
        /// The key holds another kind of value (Redis `WRONGTYPE`). A programming error.
        public static let wrongType = Code(value: .wrongType)
        /// An increment met a value that is not a 64-bit integer, or overflowed.
        public static let notAnInteger = Code(value: .notAnInteger)
        /// An argument is out of range (a non-positive TTL, an empty key list, …).
        public static let invalidArgument = Code(value: .invalidArgument)
        /// An optimistic transaction kept conflicting with other writers and gave up.
        public static let transactionConflict = Code(value: .transactionConflict)
        /// The backend answered something this client does not understand. A bug: report it.
        public static let unexpectedReply = Code(value: .unexpectedReply)
        /// The backend is out of memory and refuses writes (Redis `OOM`: `maxmemory` reached
        /// with the `noeviction` policy). Reads still work. Retry later; an operator frees
        /// memory or raises the limit.
        public static let outOfMemory = Code(value: .outOfMemory)
        /// The server is a read-only replica (Redis `READONLY`), as the old primary becomes after
        /// a failover. The connection is reopened, which finds the new primary when the address
        /// now names it (a managed Redis's endpoint); retry.
        public static let readOnly = Code(value: .readOnly)
        /// The backend refused the command for another reason (its message says why).
        public static let serverError = Code(value: .serverError)
        /// The backend rejected the credentials. Fix the URL's user and password.
        public static let authenticationFailed = Code(value: .authenticationFailed)
        /// The backend cannot do this (e.g. TLS with hiredis 0.14).
        public static let unsupported = Code(value: .unsupported)
        /// A subscription with the `.disconnect` policy fell behind and was ended.
        public static let subscriberOverflow = Code(value: .subscriberOverflow)
        /// The broker was shut down.
        public static let shutDown = Code(value: .shutDown)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "BrokerError.\(code): \(message)" }
}

extension BrokerError {
    /// Whether the backend is unreachable, did not answer in time, or is a replica until the
    /// connection finds the primary again (``Code/connectionLost``, ``Code/connectionFailed``,
    /// ``Code/timedOut``, ``Code/readOnly``): the same call may succeed once it is back.
    public var isOutage: Bool {
        code == .connectionLost || code == .connectionFailed || code == .timedOut || code == .readOnly
    }

    /// Whether the same call may succeed later, unchanged: the backend is away (``isOutage``)
    /// or refuses writes until memory is freed (``Code/outOfMemory``). Idempotent steps retry
    /// these; anything else will fail the same way again.
    public var isTransient: Bool {
        isOutage || code == .outOfMemory
    }
}
