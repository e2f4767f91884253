import Broker
import Testing

@Suite("Status messages and the lifecycle state machine (no I/O)")
struct StatusDecisionTests {
    let now = Timestamp(milliseconds: 1_762_857_045_000)

    func record(_ statuses: [JobStatus] = [.created], owner: String = "alice", attempts: Int = 0) -> JobRecord {
        JobRecord(
            jobId: "1-a", type: "rebalance", status: statuses.last!, user: .init(publicKey: owner), payload: [:],
            createdAt: "2025-11-11T10:30:00.000Z", updatedAt: "2025-11-11T10:30:00.000Z",
            history: statuses.map { .init(status: $0, timestamp: "2025-11-11T10:30:00.000Z") }, attempts: attempts)
    }

    func update(_ status: JobStatus, user: String = "alice", attempts: Int? = nil) -> StatusUpdate {
        StatusUpdate(jobId: "1-a", status: status, userId: user, attempts: attempts)
    }

    @Test("parses required fields strictly and optional ones leniently")
    func parsing() throws {
        let parsed = try StatusUpdate.parse(Array(
            #"{"jobId":"1-a","status":"error","userId":"alice","error":{"code":5},"attempts":"3","progress":7}"#.utf8))
        #expect(parsed.update.status == .error)
        #expect(parsed.update.error == #"{"code":5}"#)
        #expect(parsed.update.attempts == 3)
        #expect(parsed.fields["progress"] == 7)
        let cases: [(String, StatusMessageError)] = [
            ("nope", .malformed("not JSON")),
            ("42", .malformed("not a JSON object")),
            (#"{"status":"done","userId":"a"}"#, .missingField("jobId")),
            (#"{"jobId":"1-a","userId":"a"}"#, .missingField("status")),
            (#"{"jobId":"1-a","status":"done"}"#, .missingField("userId")),
            (#"{"jobId":"1-a","status":"done","userId":""}"#, .missingField("userId")),
            (#"{"jobId":7,"status":"done","userId":"a"}"#, .missingField("jobId")),
            (#"{"jobId":"1-a","status":"done","userId":true}"#, .missingField("userId")),
            (#"{"jobId":"1-a","status":"done","userId":4.5}"#, .missingField("userId")),
            (#"{"jobId":"1-a","status":"finished","userId":"a"}"#, .unknownStatus("finished")),
        ]
        for (text, expected) in cases {
            #expect(throws: expected, "\(text)") { try StatusUpdate.parse(Array(text.utf8)) }
        }
    }

    /// An agent that copies a numeric database id into `userId` reaches user "42", as the
    /// original's `user:${userId}` did; the event carries the id as text.
    @Test("an integer userId is its decimal text")
    func integerUserId() throws {
        for text in ["42", "42.0", "-7", "0"] {
            let parsed = try StatusUpdate.parse(Array(#"{"jobId":"1-a","status":"done","userId":\#(text)}"#.utf8))
            #expect(parsed.update.userId == (text == "42.0" ? "42" : text))
        }
        let parsed = try StatusUpdate.parse(Array(#"{"jobId":"1-a","status":"done","userId":42}"#.utf8))
        #expect(parsed.update.eventData(fields: parsed.fields, eventId: EventID(1), routedAt: now)["userId"] == "42")
    }

    @Test("event data: the update, its unknown fields, a timestamp, and eventId")
    func eventData() {
        let data = update(.done).eventData(fields: ["progress": 100, "status": "ignored"], eventId: EventID(9), routedAt: now)
        #expect(data["status"] == "done")
        #expect(data["progress"] == 100)
        #expect(data["eventId"] == "9")
        #expect(data["timestamp"] == "2025-11-11T10:30:45.000Z")
        #expect(data["userId"] == "alice")
    }

    @Test("applies forward transitions and appends history with the time")
    func applies() throws {
        guard case .apply(let next) = JobLifecycle.decide(update(.processing), on: record(), now: now) else {
            Issue.record("not applied")
            return
        }
        #expect(next.status == .processing)
        #expect(next.history.last == .init(status: .processing, timestamp: "2025-11-11T10:30:45.000Z"))
        #expect(next.updatedAt == "2025-11-11T10:30:45.000Z")
        var done = update(.done)
        done.result = ["fee": 20]
        guard case .apply(let finished) = JobLifecycle.decide(done, on: next, now: now) else {
            Issue.record("not applied")
            return
        }
        #expect(finished.result == ["fee": 20])
    }

    @Test("drops: wrong owner, duplicates, after final; routes without a record once")
    func drops() {
        #expect(JobLifecycle.decide(update(.processing, user: "mallory"), on: record(), now: now) == .drop(.wrongOwner))
        #expect(JobLifecycle.decide(update(.processing), on: record([.created, .processing]), now: now) == .drop(.duplicate))
        #expect(JobLifecycle.decide(update(.created), on: record(), now: now) == .drop(.duplicate))
        #expect(JobLifecycle.decide(update(.error), on: record([.created, .done]), now: now) == .drop(.afterFinal))
        #expect(JobLifecycle.decide(update(.done), on: record([.created, .done]), now: now) == .drop(.duplicate))
        #expect(JobLifecycle.decide(update(.done, user: "mallory"), on: record([.created, .done]), now: now) == .drop(.wrongOwner))
        #expect(JobLifecycle.decide(update(.done), on: nil, now: now) == .routeWithoutRecord)
        #expect(JobLifecycle.decide(update(.done), on: nil, alreadyRoutedWithoutRecord: true, now: now) == .drop(.duplicate))
    }

    @Test("retrying: once per attempt, in any numbering")
    func retrying() {
        let processing = record([.created, .processing], attempts: 1)
        guard case .apply(let first) = JobLifecycle.decide(update(.retrying, attempts: 1), on: processing, now: now) else {
            Issue.record("first retry not applied")
            return
        }
        #expect(JobLifecycle.decide(update(.retrying, attempts: 1), on: first, now: now) == .drop(.duplicate))
        guard case .apply(let second) = JobLifecycle.decide(update(.retrying, attempts: 2), on: first, now: now) else {
            Issue.record("second retry not applied")
            return
        }
        #expect(JobLifecycle.decide(update(.retrying, attempts: 1), on: second, now: now) == .drop(.duplicate), "a late copy")
        #expect(JobLifecycle.decide(update(.retrying), on: second, now: now) == .drop(.duplicate))
        #expect(second.history.filter { $0.status == .retrying }.count == 2)
    }
}
