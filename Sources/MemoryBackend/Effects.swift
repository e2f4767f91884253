/// What a command leaves to do once the broker's lock is released: continuations must never
/// be resumed, nor messages delivered into subscriptions, while holding it.
@usableFromInline
struct Effects: Sendable {
    var resumptions: [(CheckedContinuation<WaitOutcome, Never>, WaitOutcome)] = []
    var publications: [Publication] = []

    var isEmpty: Bool { resumptions.isEmpty && publications.isEmpty }

    @usableFromInline
    func run() {
        for (continuation, outcome) in resumptions { continuation.resume(returning: outcome) }
        for publication in publications { publication.deliver() }
    }
}

extension MemoryStore {
    /// Takes the queued effects, `nil` when there are none (the common case costs nothing).
    @inline(__always)
    mutating func takeEffects() -> Effects? {
        if effects.isEmpty { return nil }
        defer { effects = Effects() }
        return effects
    }

    /// Serves waiters if this command filled a queue they wait on, then takes the effects.
    @usableFromInline
    mutating func finishCommand() -> Effects? {
        if !readyQueues.isEmpty { serveReadyQueues() }
        return takeEffects()
    }
}
