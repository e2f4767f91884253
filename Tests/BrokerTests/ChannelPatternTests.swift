import Broker
import BrokerTesting
import Testing

/// `ChannelPattern` against the glob table observed on redis-server 7 (the same table the
/// conformance suite runs through real pattern subscriptions).
struct ChannelPatternTests {
    @Test(arguments: BrokerConformance.globTable)
    func matchesAsRedis(_ row: GlobCase) {
        #expect(ChannelPattern(row.pattern).matches(row.channel) == row.matches, "\(row)")
    }

    @Test func theTableCoversEveryGlobFeature() {
        let patterns = BrokerConformance.globTable.map(\.pattern)
        for feature in ["*", "?", "[ae]", "[^", "[a-b]", "[z-a]", "\\*", "\\?", "h*llo", "h?llo", "user:*:status"] {
            #expect(patterns.contains { $0.contains(feature) }, "no row uses \(feature)")
        }
        #expect(BrokerConformance.globTable.contains { $0.pattern.isEmpty && $0.channel.isEmpty })
        #expect(BrokerConformance.globTable.count >= 20)
        #expect(BrokerConformance.globTable.contains { $0.matches })
        #expect(BrokerConformance.globTable.contains { !$0.matches })
    }

    @Test func severalStarsBacktrackToTheRightAnswer() {
        let pattern = ChannelPattern("a*a*a*a*b")
        #expect(!pattern.matches(String(repeating: "a", count: 20)))
        #expect(pattern.matches(String(repeating: "a", count: 20) + "b"))
        #expect(pattern.matches("aaaab"))
        #expect(!pattern.matches("aaab"))
    }

    /// Without Redis's skip-longer-matches guard this pattern takes exponential time (about
    /// 200 characters against 12 stars would not finish); with it, it is linear-ish and must
    /// still give the right answers.
    @Test func manyStarsOnALongChannelDoNotBacktrackExponentially() {
        let stars = ChannelPattern(String(repeating: "a*", count: 12) + "b")
        let long = String(repeating: "a", count: 200)
        #expect(!stars.matches(long))
        #expect(stars.matches(long + "b"))
        #expect(!stars.matches(long + "c"))
        #expect(ChannelPattern("*x*y*z").matches(String(repeating: "q", count: 100) + "xyz"))
    }

    @Test func describesItself() {
        #expect(ChannelPattern("user:*").description == "user:*")
        #expect(ChannelPattern("user:*").pattern == "user:*")
    }
}
