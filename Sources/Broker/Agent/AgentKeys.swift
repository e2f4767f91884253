/// The broker names an agent uses for every job, made once: ``JobNames`` builds each name
/// anew on every call, and an agent asks for five of them per job.
struct AgentKeys: Sendable, Hashable {
    let queue: String
    let processing: String
    let statusChannel: String
    /// `names.record("")` and `names.lease("")`: the job id is the last part of both keys.
    private let recordPrefix: String
    private let leasePrefix: String

    init(_ names: JobNames) {
        queue = names.queue
        processing = names.processing
        statusChannel = names.statusChannel
        recordPrefix = names.record("")
        leasePrefix = names.lease("")
    }

    /// `names.record(jobId)`.
    func record(_ jobId: String) -> String { recordPrefix + jobId }

    /// `names.lease(jobId)`.
    func lease(_ jobId: String) -> String { leasePrefix + jobId }
}
