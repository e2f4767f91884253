import Broker
import Testing

@Suite("Session registry and room policy (no I/O)")
struct SessionRegistryTests {
    func event(_ name: String = "e", room: String, id: Int64? = nil) -> RoutedEvent {
        RoutedEvent(name: name, room: room, data: ["id": id.map { .integer($0) } ?? .null], eventId: id.map { EventID($0) })
    }

    @Test("default policy: only room:… names; never a user room; limits")
    func policy() {
        let policy = RoomPolicy.default
        #expect(policy.refusal(for: "room:lobby") == nil)
        #expect(policy.refusal(for: "user:bob") == .notAllowed("user:bob"))
        #expect(policy.refusal(for: "lobby") == .notAllowed("lobby"))
        #expect(policy.refusal(for: "room:") == .notAllowed("room:"))
        #expect(policy.refusal(for: "") == .invalidName(""))
        #expect(policy.refusal(for: "room:" + String(repeating: "x", count: 300)) != nil)
        #expect(policy.refusal(for: "room:a\nb") != nil)
        // Even a policy that admits "user:" prefixes never admits user rooms.
        #expect(RoomPolicy(allowedPrefixes: ["user:", ""]).refusal(for: "user:bob") == .notAllowed("user:bob"))
    }

    @Test("a session is in its user room; joins obey the policy; leaving keeps the user room")
    func joins() throws {
        let registry = SessionRegistry(policy: RoomPolicy(maxRoomsPerSession: 2))
        let session = registry.open(userId: "alice", transport: "test")
        #expect(session.rooms == ["user:alice"])
        try session.join("room:a")
        try session.join("room:a")
        try session.join("room:b")
        #expect(throws: RoomError.tooManyRooms(limit: 2)) { try session.join("room:c") }
        #expect(throws: RoomError.notAllowed("user:bob")) { try session.join("user:bob") }
        #expect(session.rooms == ["user:alice", "room:a", "room:b"])
        #expect(!session.leave("user:alice"))
        #expect(session.leave("room:a"))
        #expect(!session.leave("room:a"))
        // The server may place a session in a room a client could not ask for.
        try registry.joinTrusted(session, room: "job:1-a")
        #expect(registry.sessions(in: "job:1-a").map(\.id) == [session.id])
        session.close()
        #expect(throws: RoomError.sessionClosed) { try session.join("room:z") }
        #expect(registry.counts == SessionCounts(sessions: 0, rooms: 0, users: 0))
    }

    @Test("broadcast reaches every session of a room, users may have many sessions")
    func broadcast() async {
        let registry = SessionRegistry()
        let a1 = registry.open(userId: "alice", transport: "websocket")
        let a2 = registry.open(userId: "alice", transport: "sse")
        let b = registry.open(userId: "bob", transport: "socket.io")
        #expect(registry.counts == SessionCounts(sessions: 3, rooms: 2, users: 2))
        #expect(registry.broadcast(event(room: "user:alice", id: 1)).delivered == 2)
        #expect(registry.broadcast(event(room: "user:alice", id: 1)).duplicates == 2, "same id again is skipped")
        #expect(registry.broadcast(event(room: "room:none")).delivered == 0)
        #expect(a1.bufferedCount == 1 && a2.bufferedCount == 1 && b.bufferedCount == 0)
        var iterator = a2.makeAsyncIterator()
        #expect(await iterator.next()?.eventId == EventID(1))
        for session in [a1, a2, b] { session.close() }
    }

    @Test("events arriving out of id order are all delivered; repeats are not")
    func outOfOrder() async {
        let registry = SessionRegistry()
        let session = registry.open(userId: "alice", transport: "test")
        for id: Int64 in [6, 5, 6, 7, 5] { registry.broadcast(event(room: "user:alice", id: id)) }
        var iterator = session.makeAsyncIterator()
        var ids: [EventID?] = []
        for _ in 0..<3 { ids.append(await iterator.next()?.eventId) }
        #expect(ids == [EventID(6), EventID(5), EventID(7)])
        #expect(session.bufferedCount == 0)
        #expect(session.lastEventId == EventID(7))
        #expect(registry.counters.duplicatesSkipped == 2)
        session.close()
    }

    @Test("1,000 open/join/close cycles leave no session and no room")
    func noLeaks() throws {
        let registry = SessionRegistry()
        for index in 0..<1_000 {
            let session = registry.open(userId: "user-\(index % 7)", transport: "test")
            try session.join("room:\(index % 13)")
            registry.broadcast(event(room: "room:\(index % 13)"))
            if index % 2 == 0 { session.close() } else { registry.closeAll(reason: .closed) }
        }
        #expect(registry.counts == SessionCounts(sessions: 0, rooms: 0, users: 0))
        #expect(registry.counters.opened == 1_000 && registry.counters.closed == 1_000)
    }

    @Test("a slow consumer is closed with a reason and counted; memory stays bounded")
    func slowConsumer() async {
        let registry = SessionRegistry(outboundCapacity: 4)
        let slow = registry.open(userId: "alice", transport: "test")
        let other = registry.open(userId: "alice", transport: "test", capacity: 100)
        for id in 1...5 { registry.broadcast(event(room: "user:alice", id: Int64(id))) }
        #expect(slow.closeReason == .slowConsumer(capacity: 4))
        #expect(slow.bufferedCount == 0)
        // The four waiting and the fifth that did not fit; none was handed over.
        #expect(slow.discardedCount == 5 && slow.deliveredCount == 4)
        #expect(other.closeReason == nil && other.bufferedCount == 5 && other.discardedCount == 0)
        #expect(registry.counters.slowClosed == 1)
        #expect(registry.counts.sessions == 1)
        var iterator = slow.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        other.close()
    }

    /// A count limit alone lets a client that stops reading hold that many large events.
    @Test("event data beyond the byte limit closes a slow consumer; one large event still goes out")
    func slowConsumerByBytes() async {
        let registry = SessionRegistry(outboundCapacity: 1_000, outboundByteCapacity: 10_000)
        let big = String(repeating: "x", count: 4_000)
        let slow = registry.open(userId: "carol", transport: "test")
        for id: Int64 in 1...2 { registry.broadcast(RoutedEvent(name: "e", room: "user:carol", data: .string(big), eventId: EventID(id))) }
        #expect(slow.closeReason == nil && slow.bufferedCount == 2)
        var iterator = slow.makeAsyncIterator()
        #expect(await iterator.next()?.eventId == EventID(1))  // taken: its bytes are free again
        registry.broadcast(RoutedEvent(name: "e", room: "user:carol", data: .string(big), eventId: EventID(3)))
        #expect(slow.closeReason == nil && slow.bufferedCount == 2)
        registry.broadcast(RoutedEvent(name: "e", room: "user:carol", data: .string(big), eventId: EventID(4)))
        #expect(slow.closeReason == .slowConsumer(capacity: 1_000))
        #expect(slow.discardedCount == 3)
        // An event larger than the limit alone is not a slow consumer's doing.
        let reader = registry.open(userId: "dave", transport: "test")
        registry.broadcast(RoutedEvent(name: "e", room: "user:dave", data: .string(String(repeating: "y", count: 50_000))))
        #expect(reader.closeReason == nil && reader.bufferedCount == 1)
        reader.close()
    }

    @Test("a slow consumer whose transport closes it on the overflow wake-up is still counted as slow")
    func slowConsumerClosedByItsTransport() {
        let registry = SessionRegistry(outboundCapacity: 2)
        let slow = registry.open(userId: "bob", transport: "test")
        // A push transport that ends the connection as soon as it learns of the overflow.
        slow.onAvailable {
            if case .slowConsumer = slow.closeReason { slow.close() }
        }
        for id in 1...3 { registry.broadcast(event(room: "user:bob", id: Int64(id))) }
        #expect(slow.closeReason == .slowConsumer(capacity: 2))
        #expect(registry.counters.slowClosed == 1 && registry.counters.closed == 1)
        #expect(registry.counts.sessions == 0)
    }

    @Test("a waiting consumer is woken by delivery and by close")
    func wakeups() async throws {
        let registry = SessionRegistry()
        let session = registry.open(userId: "alice", transport: "test")
        async let first: RoutedEvent? = {
            var iterator = session.makeAsyncIterator()
            return await iterator.next()
        }()
        // Deliver until the waiting consumer has taken one (it may not be waiting yet).
        while session.deliveredCount == 0 { registry.broadcast(event(room: "user:alice")) ; await Task.yield() }
        #expect(await first?.name == "e")
        async let end: RoutedEvent? = {
            var iterator = session.makeAsyncIterator()
            while let event = await iterator.next() { _ = event }
            return nil
        }()
        session.close()
        #expect(await end == nil)
        #expect(session.closeReason == .closed)
    }
}
