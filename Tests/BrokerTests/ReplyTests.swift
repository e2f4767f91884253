import Broker
import Testing

/// The typed accessors over `Reply`: the right shape gives the value, an `.error` rethrows the
/// command's own error, any other shape is `unexpectedReply`.
struct ReplyTests {
    private let failure = BrokerError(.wrongType, "WRONGTYPE")

    private func expectCode(_ code: BrokerError.Code, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected \(code), nothing thrown")
        } catch let error as BrokerError {
            #expect(error.code == code)
        } catch {
            Issue.record("expected a BrokerError, got \(error)")
        }
    }

    @Test func integer() throws {
        #expect(try Reply.integer(-7).integer() == -7)
        #expect(throws: failure) { try Reply.error(failure).integer() }
        for other in [Reply.ok, .null, .value([1]), .array([])] {
            expectCode(.unexpectedReply) { _ = try other.integer() }
        }
    }

    @Test func value() throws {
        #expect(try Reply.value([0, 255]).value() == [0, 255])
        #expect(try Reply.value([]).value() == [], "an empty value is not nil")
        #expect(try Reply.null.value() == nil)
        #expect(throws: failure) { try Reply.error(failure).value() }
        for other in [Reply.ok, .integer(1), .array([])] {
            expectCode(.unexpectedReply) { _ = try other.value() }
        }
    }

    @Test func values() throws {
        #expect(try Reply.array([.value([1]), .value([]), .value([2, 3])]).values() == [[1], [], [2, 3]])
        #expect(try Reply.array([]).values() == [])
        #expect(throws: failure) { try Reply.error(failure).values() }
        expectCode(.unexpectedReply) { _ = try Reply.value([1]).values() }
        expectCode(.unexpectedReply) { _ = try Reply.array([.integer(1)]).values() }
    }

    @Test func isOK() throws {
        #expect(try Reply.ok.isOK())
        #expect(try Reply.null.isOK() == false)
        #expect(throws: failure) { try Reply.error(failure).isOK() }
        expectCode(.unexpectedReply) { _ = try Reply.integer(1).isOK() }
    }

    @Test func errorsCompareByCodeAndMessage() {
        #expect(BrokerError(.wrongType, "a") == BrokerError(.wrongType, "a"))
        #expect(BrokerError(.wrongType, "a") != BrokerError(.notAnInteger, "a"))
        #expect(BrokerError(.timedOut, "slow").description.contains("timedOut"))
    }
}
