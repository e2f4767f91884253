import Logging
/// The agent's logger with the job id attached at log time only: setting metadata on a
/// `Logger` per job costs more than a memory-backed job's broker work, and most jobs log nothing.
struct JobLogger {
    let base: Logger
    let jobId: String

    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata) {
        guard base.logLevel <= level else { return }
        var metadata = metadata
        metadata["jobId"] = "\(JobID.loggable(jobId))"
        base.log(level: level, message(), metadata: metadata)
    }

    func notice(_ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata = [:]) {
        log(.notice, message(), metadata: metadata)
    }

    func warning(_ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata = [:]) {
        log(.warning, message(), metadata: metadata)
    }

    func error(_ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata = [:]) {
        log(.error, message(), metadata: metadata)
    }
}
