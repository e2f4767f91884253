/// What a command leaves to do once the broker's lock is released: waiters' continuations are
/// never resumed while holding it.
///
/// Publications queue here while a command runs (an atomic batch that fails drops them) and
/// are delivered when the command finishes, still under the lock: delivery only appends to
/// bounded subscription buffers and never blocks, and doing it there keeps Redis's order —
/// messages in the order they were published, and a command's messages in subscribers'
/// buffers before any waiter it served wakes up (an agent woken by a job's LPUSH cannot get
/// its `processing` out ahead of the job's `created`).
@usableFromInline
struct Effects: Sendable {
    var resumptions: [(CheckedContinuation<WaitOutcome, Never>, WaitOutcome)] = []
    var publications: [Publication] = []

    var isEmpty: Bool { resumptions.isEmpty && publications.isEmpty }

    @usableFromInline
    func run() {
        for (continuation, outcome) in resumptions { continuation.resume(returning: outcome) }
    }
}

extension MemoryStore {
    /// Delivers the queued publications (under the lock, see ``Effects``) and takes the
    /// waiters to resume, `nil` when there are none (the common case costs nothing).
    @inline(__always)
    mutating func takeEffects() -> Effects? {
        if effects.isEmpty { return nil }
        if !effects.publications.isEmpty {
            for publication in effects.publications { publication.deliver() }
            effects.publications.removeAll(keepingCapacity: true)
            if effects.resumptions.isEmpty { return nil }
        }
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
