import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A `TaskExecutor` that runs jobs on the I/O thread of a role's current connection (see
/// ``RedisBroker/commandExecutor``), so a task that prefers it is resumed right where its reply
/// was read: no hop to another thread and back for each round trip.
///
/// While the role has no connection (an outage, a reconnect), jobs go to the global concurrent
/// executor instead, so nothing waits for the I/O thread to come back.
final class ConnectionExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `UnownedJob` is not Sendable, but each job sits in `state` until exactly one
    // thread takes it out to run it.
    private struct State {
        var jobs: [UnownedJob] = []
        var runner: Runner?
    }

    /// The I/O thread currently running jobs.
    struct Runner {
        var thread: pthread_t
        var wake: @Sendable () -> Void
    }

    private let state = Mutex(State())

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let wake: (@Sendable () -> Void)?? = state.withLock { state in
            guard let runner = state.runner else { return .none }
            state.jobs.append(unowned)
            // Enqueued by the I/O thread itself (a continuation it resumed): it runs the job
            // before it polls again, no wake needed.
            return pthread_equal(runner.thread, pthread_self()) != 0 ? .some(nil) : .some(runner.wake)
        }
        switch wake {
        case .none: globalConcurrentExecutor.enqueue(ExecutorJob(unowned))
        case .some(let wake): wake?()
        }
    }

    /// The I/O thread of a new connection starts running jobs.
    func attach(_ runner: Runner) {
        state.withLock { $0.runner = runner }
    }

    /// The I/O thread ends: jobs it did not run go to the global executor.
    func detach() {
        let left = state.withLock { state in
            state.runner = nil
            defer { state.jobs = [] }
            return state.jobs
        }
        for job in left { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }

    /// Runs the jobs queued so far (on the I/O thread); `true` if the jobs queued more.
    func runPending() -> Bool {
        let jobs = state.withLock { state in
            defer { state.jobs.removeAll(keepingCapacity: true) }
            return state.jobs
        }
        for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        return state.withLock { !$0.jobs.isEmpty }
    }
}
