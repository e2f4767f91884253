import Broker
import Testing

/// `JSONValue.javaScriptNumber` against Node 20's `Number(value)` for the same inputs, and the
/// demo handler's amount check against the original's `payload.amount > 0`.
@Suite("JavaScript ToNumber")
struct JavaScriptNumberTests {
    @Test(arguments: [
        ("100", 100.0), (" 1e3 ", 1000), ("0x10", 16), ("0o17", 15), ("0b101", 5), ("", 0), ("  ", 0),
        ("\t\n42\u{a0}", 42), ("+5", 5), ("-5", -5), ("5.", 5), (".5", 0.5), ("+.5", 0.5), ("0012", 12),
        ("-0", 0), ("\u{2003} 7 \u{2003}", 7), ("\u{feff}3", 3), ("Infinity", .infinity), ("-Infinity", -.infinity),
        ("1e400", .infinity),
    ])
    func numericStrings(_ text: String, _ expected: Double) {
        #expect(JSONValue.string(text).javaScriptNumber == expected)
    }

    @Test(arguments: ["1e", "e5", "1_000", "0x", "0xG", "abc", "infinity", "1,5", "12px", "0x1p3", "nan", "1.2.3", "--1"])
    func stringsThatAreNotNumbers(_ text: String) {
        #expect(JSONValue.string(text).javaScriptNumber.isNaN)
    }

    @Test func otherValues() {
        let numbers: [(JSONValue, Double)] = [
            (.null, 0), (true, 1), (false, 0), ([], 0), ([5], 5), (["7"], 7), ([.null], 0), ([[3]], 3), ([[]], 0),
            (.integer(-12), -12), (.number(2.5), 2.5),
        ]
        for (value, expected) in numbers { #expect(value.javaScriptNumber == expected, "\(value)") }
        for value: JSONValue in [[1, 2], [true], [:], [["a": 1]]] { #expect(value.javaScriptNumber.isNaN, "\(value)") }
    }

    @Test(arguments: [
        (JSONValue.string("100"), 2.0, 98.0), (.integer(250), 5, 245), (.string(" 50 "), 1, 49), (.bool(true), 0.02, 0.98),
        (.array([5]), 0.1, 4.9), (.string("0x10"), 0.32, 15.68),
    ] as [(JSONValue, Double, Double)])
    func demoHandlerTakesWhatTheOriginalTook(_ amount: JSONValue, _ fee: Double, _ remaining: Double) async throws {
        let result = try await DemoRebalanceHandler().handle(Self.job(amount))
        #expect(result["fee"]?.doubleValue == fee)
        #expect(result["remainingAmount"]?.doubleValue == remaining)
        #expect(result["originalAmount"] == amount)
    }

    @Test(arguments: [JSONValue.string("abc"), "-1", 0, .null, "Infinity", [:], "", [1, 2]] as [JSONValue])
    func demoHandlerRefusesWhatTheOriginalRefused(_ amount: JSONValue) async throws {
        await #expect(throws: JobFailure.permanent("Invalid amount")) {
            _ = try await DemoRebalanceHandler().handle(Self.job(amount))
        }
    }

    static func job(_ amount: JSONValue) -> JobRecord {
        JobRecord(
            jobId: "1-a", type: "rebalance", status: .processing, user: .init(publicKey: "u"), payload: ["amount": amount],
            createdAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-01T00:00:00.000Z", history: [])
    }
}
