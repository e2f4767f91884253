import Broker
import BrokerTesting
import Foundation
import Gateway
import MemoryBackend
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("HTTP API (SPEC §2)")
struct HTTPAPITests {
    static func auth(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    @Test func createJobStoresQueuesAndAnswers201() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.gateway.makeApplication().test(.router) { client in
            let response = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token),
                body: ByteBuffer(string: #"{"amount":1000,"priority":"high"}"#))
            #expect(response.status == .created)
            let jobId = try #require(response.json?["jobId"]?.stringValue)
            #expect(response.json?["status"] == "created")
            // Stored with the SPEC's names, queued for a BRPOP agent.
            let record = try #require(try await test.broker.get(JobNames().record(jobId)))
            let stored = try JSONDecoder().decode(JobRecord.self, from: Data(record))
            #expect(stored.user.publicKey == "alice")
            #expect(stored.payload == ["amount": 1000, "priority": "high"])
            #expect(try await test.broker.pop(from: .tail, of: JobNames().queue) == Array(jobId.utf8))
        }
    }

    /// The body is read as Node read it for the original: a duplicated member keeps its last
    /// value (JSON.parse), a UTF-8 byte order mark is skipped (Express's body parser).
    @Test func bodiesAreReadAsJSONParseReadsThem() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.gateway.makeApplication().test(.router) { client in
            for (body, payload) in [
                (Array(#"{"amount":1,"amount":2,"b":{"x":1,"x":3}}"#.utf8), ["amount": 2, "b": ["x": 3]] as JSONValue),
                ([0xEF, 0xBB, 0xBF] + Array(#"{"amount":5}"#.utf8), ["amount": 5]),
            ] {
                let response = try await client.execute(
                    uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token), body: ByteBuffer(bytes: body))
                #expect(response.status == .created)
                let jobId = try #require(response.json?["jobId"]?.stringValue)
                let record = try #require(try await test.broker.get(JobNames().record(jobId)))
                #expect(try JSONDecoder().decode(JobRecord.self, from: Data(record)).payload == payload)
            }
        }
    }

    /// What JSON.parse then JSON.stringify made of a body in the original: numbers in
    /// JavaScript's text, an unpaired surrogate or a byte that is not UTF-8 kept as U+FFFD
    /// rather than the request refused; the record is answered in SPEC §1's member order.
    @Test func recordsKeepTheTextTheOriginalGaveThem() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.gateway.makeApplication().test(.router) { client in
            let body = Array(#"{"amount":100.0,"fee":1e-7,"big":12345678901234567890,"zero":-0.0,"note":"caf\u00e9 \ud83d "#.utf8)
                + [0xFF] + Array(#""}"#.utf8)
            let created = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token), body: ByteBuffer(bytes: body))
            #expect(created.status == .created)
            let jobId = try #require(created.json?["jobId"]?.stringValue)
            let expectedPayload =
                #"{"amount":100,"big":12345678901234567000,"fee":1e-7,"note":"café \#u{FFFD} \#u{FFFD}","zero":0}"#
            let stored = try #require(try await test.broker.get(JobNames().record(jobId)))
            #expect(String(decoding: stored, as: UTF8.self).contains(#""payload":\#(expectedPayload)"#))
            let read = try await client.execute(uri: "/api/v1/rebalance/\(jobId)", method: .get, headers: Self.auth(token))
            #expect(read.status == .ok)
            let text = String(buffer: read.body)
            #expect(text.hasPrefix(#"{"jobId":"\#(jobId)","type":"rebalance","status":"created","#), "\(text)")
            #expect(text.contains(#""payload":\#(expectedPayload)"#), "\(text)")
        }
    }

    /// `{"amount": 5, "note": "héllo"}` compressed by Python's `gzip` and `zlib` modules.
    static let gzipBody = [UInt8](Data(base64Encoded: "H4sIAAAAAAACA6tWSszNL80rUbJSMNVRUMrLL0kFMpUyDq/MyclXqgUAZoKHKx8AAAA=")!)
    static let deflateBody = [UInt8](Data(base64Encoded: "eJyrVkrMzS/NK1GyUjDVUVDKyy9JBTKVMg6vzMnJV6oFAJ95Cl8=")!)
    /// 258 bytes of gzip that inflate to a 200 KiB JSON object.
    static let gzipBomb = [UInt8](Data(base64Encoded: """
        H4sIAAAAAAACA+3BsQ2AIAAEwFXM17Y0bENiq1BARdzdPczd7bS7r2emljOjXak5AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+J\
        W8Hxqk5TkVIAMA
        """)!)

    /// Compressed bodies are read as the original's body parser read them (gzip and deflate,
    /// the limit applying inflated); other codings get 415, broken data 400.
    @Test func compressedBodies() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.gateway.makeApplication().test(.router) { client in
            func post(_ body: [UInt8], encoding: String?) async throws -> TestResponse {
                var headers = Self.auth(token)
                if let encoding { headers[.contentEncoding] = encoding }
                return try await client.execute(
                    uri: "/api/v1/agent/rebalance", method: .post, headers: headers, body: ByteBuffer(bytes: body))
            }
            for (body, encoding) in [(Self.gzipBody, "gzip"), (Self.gzipBody, "GZip"), (Self.deflateBody, "deflate")] {
                let created = try await post(body, encoding: encoding)
                #expect(created.status == .created, "\(encoding)")
                let jobId = try #require(created.json?["jobId"]?.stringValue)
                let record = try await client.execute(uri: "/api/v1/rebalance/\(jobId)", method: .get, headers: Self.auth(token))
                #expect(record.json?["payload"] == ["amount": 5, "note": "héllo"])
            }
            let plain = try await post(Array(#"{"amount":5}"#.utf8), encoding: "identity")
            #expect(plain.status == .created)

            let brotli = try await post(Self.gzipBody, encoding: "br")
            #expect(brotli.status == .unsupportedMediaType)
            #expect(brotli.json?["error"] == #"unsupported content encoding "br"; send it as gzip, deflate or uncompressed"#)
            let bomb = try await post(Self.gzipBomb, encoding: "gzip")
            #expect(bomb.status == .contentTooLarge)
            #expect(bomb.json?["error"] == "request body larger than 65536 bytes once inflated")
            // Truncated, followed by more data, of the other format, or not compressed at all.
            for (body, encoding) in [
                (Array(Self.gzipBody.dropLast(8)), "gzip"), (Self.gzipBody + [0x0A], "gzip"), (Self.deflateBody, "gzip"),
                (Self.gzipBody, "deflate"), (Array(#"{"amount":5}"#.utf8), "gzip"),
            ] {
                let refused = try await post(body, encoding: encoding)
                #expect(refused.status == .badRequest, "\(encoding) \(body.count)")
                #expect(refused.json?["error"]?.stringValue?.hasPrefix("body is not valid \(encoding.lowercased()) data: ") == true)
            }
        }
    }

    @Test func getJobIsForItsOwnerOnly() async throws {
        let test = try await TestGateway(withAgent: false)
        let alice = try await test.token("alice")
        let bob = try await test.token("bob")
        try await test.gateway.makeApplication().test(.router) { client in
            let created = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(alice),
                body: ByteBuffer(string: #"{"amount":5}"#))
            let jobId = try #require(created.json?["jobId"]?.stringValue)

            let own = try await client.execute(uri: "/api/v1/rebalance/\(jobId)", method: .get, headers: Self.auth(alice))
            #expect(own.status == .ok)
            #expect(own.json?["jobId"]?.stringValue == jobId)
            #expect(own.json?["status"] == "created")
            #expect(own.json?["history"]?.isObject == false)
            // Members other software added to the record are part of it (SPEC §1).
            let key = "agent:rebalance:job:\(jobId)"
            let stored = try #require(try await test.broker.string(key))
            try await test.broker.set(key, to: String(stored.dropLast()) + #","region":"eu"}"#)
            let extended = try await client.execute(uri: "/api/v1/rebalance/\(jobId)", method: .get, headers: Self.auth(alice))
            #expect(extended.json?["region"] == "eu" && extended.json?["jobId"]?.stringValue == jobId)

            let other = try await client.execute(uri: "/api/v1/rebalance/\(jobId)", method: .get, headers: Self.auth(bob))
            #expect(other.status == .forbidden)
            #expect(other.json?["error"] != nil)
            #expect(other.json?["payload"] == nil)

            let unknown = try await client.execute(
                uri: "/api/v1/rebalance/1700000000000-nothere", method: .get, headers: Self.auth(alice))
            #expect(unknown.status == .notFound)
            #expect(unknown.json?["error"] == "job not found")

            let anonymous = try await client.execute(uri: "/api/v1/rebalance/\(jobId)", method: .get)
            #expect(anonymous.status == .unauthorized)

            // A record other software wrote in a shape the store does not read: its owner gets
            // it as written, others 403; without an owner, a JSON 500.
            let written = #"{"jobId":"1700000000000-foreign","user":{"publicKey":"alice"},"error":{"code":1},"extra":[1]}"#
            try await test.broker.set("agent:rebalance:job:1700000000000-foreign", to: written)
            let foreign = try await client.execute(
                uri: "/api/v1/rebalance/1700000000000-foreign", method: .get, headers: Self.auth(alice))
            #expect(foreign.status == .ok)
            #expect(String(buffer: foreign.body) == written)
            let foreignOther = try await client.execute(
                uri: "/api/v1/rebalance/1700000000000-foreign", method: .get, headers: Self.auth(bob))
            #expect(foreignOther.status == .forbidden)
            try await test.broker.set("agent:rebalance:job:1700000000000-ownerless", to: "{oops")
            let ownerless = try await client.execute(
                uri: "/api/v1/rebalance/1700000000000-ownerless", method: .get, headers: Self.auth(alice))
            #expect(ownerless.status == .internalServerError)
            #expect(ownerless.json?["error"] != nil)
        }
    }

    @Test(arguments: [
        ("not json", "invalid JSON at byte 0: "), ("[1,2,3]", "body must be a JSON object"),
        ("42", "body must be a JSON object"), ("\"text\"", "body must be a JSON object"), ("", "body must be a JSON object"),
        ("{\"a\":", "invalid JSON at byte 5: "),
        (String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65), "invalid JSON at byte 320: nesting too deep"),
    ])
    func badBodiesAre400(_ body: String, _ message: String) async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.gateway.makeApplication().test(.router) { client in
            let response = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token), body: ByteBuffer(string: body))
            #expect(response.status == .badRequest)
            let error = try #require(response.json?["error"]?.stringValue)
            #expect(message.hasSuffix(": ") ? error.hasPrefix(message) : error == message, "\(error)")
            #expect(try await test.broker.length(of: JobNames().queue) == 0)
        }
    }

    @Test func bodyOver64KiBIs413() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.gateway.makeApplication().test(.router) { client in
            let padding = String(repeating: "x", count: 64 * 1024)
            let response = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token),
                body: ByteBuffer(string: #"{"amount":1,"pad":"\#(padding)"}"#))
            #expect(response.status == .contentTooLarge)
            #expect(response.json?["error"] != nil)
            // Exactly at the limit is fine.
            let fitting = String(repeating: "y", count: 64 * 1024 - #"{"pad":""}"#.utf8.count)
            let ok = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token),
                body: ByteBuffer(string: #"{"pad":"\#(fitting)"}"#))
            #expect(ok.status == .created)
        }
    }

    @Test(arguments: [nil, "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz"])
    func badTokensAre401(_ authorization: String?) async throws {
        let test = try await TestGateway(withAgent: false)
        try await test.gateway.makeApplication().test(.router) { client in
            var headers: HTTPFields = [:]
            if let authorization { headers[.authorization] = authorization }
            let response = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: headers, body: ByteBuffer(string: "{}"))
            #expect(response.status == .unauthorized)
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(response.json?["error"]?.stringValue != nil)
        }
    }

    @Test func tokenInQueryIsAcceptedForCreation() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("carol")
        try await test.gateway.makeApplication().test(.router) { client in
            let response = try await client.execute(
                uri: "/api/v1/agent/rebalance?token=\(token)", method: .post, body: ByteBuffer(string: "{}"))
            #expect(response.status == .created)
            // Behind HTTP basic auth the browser adds its own Authorization header: the query
            // token still counts. A Bearer header goes first, as before.
            let behindBasicAuth = try await client.execute(
                uri: "/api/v1/agent/rebalance?token=\(token)", method: .post, headers: [.authorization: "Basic dXNlcjpwYXNz"],
                body: ByteBuffer(string: "{}"))
            #expect(behindBasicAuth.status == .created)
            let bearerFirst = try await client.execute(
                uri: "/api/v1/agent/rebalance?token=\(token)", method: .post, headers: [.authorization: "Bearer nonsense"],
                body: ByteBuffer(string: "{}"))
            #expect(bearerFirst.status == .unauthorized)
        }
    }

    @Test func unknownRouteIsJSON404() async throws {
        let test = try await TestGateway(withAgent: false)
        try await test.gateway.makeApplication().test(.router) { client in
            let response = try await client.execute(uri: "/nothing/here", method: .get)
            #expect(response.status == .notFound)
            #expect(response.json?["error"] == "not found")
        }
    }

    /// A known path with another method is 405 with `Allow`, and a job type not served is
    /// named: both read as a mistyped path when answered with a bare 404.
    @Test func wrongMethodIs405AndAnUnknownJobTypeIsNamed() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.gateway.makeApplication().test(.router) { client in
            for method in [HTTPRequest.Method.get, .put, .delete] {
                let create = try await client.execute(uri: "/api/v1/agent/rebalance", method: method, headers: Self.auth(token))
                #expect(create.status == .methodNotAllowed && create.headers[.allow] == "POST", "\(method)")
                #expect(create.json?["error"] == "method not allowed: this path takes POST")
            }
            let read = try await client.execute(uri: "/api/v1/rebalance/1-abc", method: .post, headers: Self.auth(token))
            #expect(read.status == .methodNotAllowed && read.headers[.allow] == "GET, HEAD")
            let other = try await client.execute(
                uri: "/api/v1/agent/swap", method: .post, headers: Self.auth(token), body: ByteBuffer(string: "{}"))
            #expect(other.status == .notFound)
            #expect(other.json?["error"] == "unknown job type 'swap': this gateway serves rebalance")
            // The routes themselves still answer.
            let created = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token), body: ByteBuffer(string: "{}"))
            #expect(created.status == .created)
            let jobId = try #require(created.json?["jobId"]?.stringValue)
            #expect(try await client.execute(uri: "/api/v1/rebalance/\(jobId)", method: .get, headers: Self.auth(token)).status == .ok)
        }
    }

    @Test func healthReportsBackendAndConnectionsThen503WhenDown() async throws {
        let outage = OutageBroker(base: MemoryBroker())
        let test = try await TestGateway(withAgent: false, broker: outage)
        try await test.gateway.makeApplication().test(.router) { client in
            let up = try await client.execute(uri: "/health", method: .get)
            #expect(up.status == .ok)
            #expect(up.json == ["status": "ok", "backend": "outage-test", "websocket": ["connections": 0, "rooms": 0]])

            outage.setDown(true)
            let down = try await client.execute(uri: "/health", method: .get)
            #expect(down.status == .serviceUnavailable)
            #expect(down.json?["status"] == "unavailable")
            // A job cannot be created meanwhile, and says why.
            let token = try await test.token("alice")
            let refused = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token), body: ByteBuffer(string: "{}"))
            #expect(refused.status == .serviceUnavailable)

            outage.setDown(false)
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        }
    }

    /// A backend that refuses writes for lack of memory is not "unavailable": the client is told
    /// what it is, and that it may try again.
    @Test func jobCreationOnABackendOutOfMemorySaysSo() async throws {
        let outage = OutageBroker(base: MemoryBroker())
        let test = try await TestGateway(withAgent: false, broker: outage)
        try await test.gateway.makeApplication().test(.router) { client in
            let token = try await test.token("alice")
            outage.setFailing(BrokerError(.outOfMemory, "redis: OOM command not allowed when used memory > 'maxmemory'."))
            let refused = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token), body: ByteBuffer(string: "{}"))
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.json?["error"]?.stringValue?.hasPrefix("backend out of memory") == true)
            outage.setFailing(nil)
            let created = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token), body: ByteBuffer(string: "{}"))
            #expect(created.status == .created)
        }
    }

    /// As Express served the original: HEAD wherever GET is, the GET's headers without its body.
    @Test func headIsAnsweredWhereverGetIs() async throws {
        let outage = OutageBroker(base: MemoryBroker())
        let test = try await TestGateway(withAgent: false, broker: outage)
        try await test.live { client in
            let port = try #require(client.port)
            func exchange(_ method: String, _ path: String) async throws -> (head: String, body: String) {
                let answer = try await withDeadline("\(method) \(path)", within: .seconds(10)) {
                    try await RawHTTPExchange.send("\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port: port)
                }
                let parts = answer.components(separatedBy: "\r\n\r\n")
                return (parts[0].lowercased(), parts.dropFirst().joined(separator: "\r\n\r\n"))
            }
            for path in ["/health", "/", "/api/v1/stats"] {
                let get = try await exchange("GET", path)
                let head = try await exchange("HEAD", path)
                #expect(head.head.hasPrefix("http/1.1 200"), "HEAD \(path): \(head.head)")
                #expect(head.body.isEmpty, "HEAD \(path) sent a body")
                let length = { (head: String) in head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") } }
                #expect(length(head.head) != nil && length(head.head) == length(get.head), "\(path)")
            }
            outage.setDown(true)
            #expect(try await exchange("HEAD", "/health").head.hasPrefix("http/1.1 503"))
            outage.setDown(false)
        }
    }

    /// Pipelined requests (several sent before any answer, RFC 9112 §9.3) are each answered, in
    /// order, on the connection's first request and after it.
    @Test func pipelinedRequestsAreAllAnsweredInOrder() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("eager")
        try await test.live { client in
            let connection = try await RawConnection.connect(port: try #require(client.port))
            let body = #"{"amount":300}"#
            let create =
                "POST /api/v1/agent/rebalance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            let health = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            let missing = "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
            try await withDeadline("pipelined answers", within: .seconds(10)) {
                try await connection.send(health + create)
                try await connection.waitFor("HTTP/1.1 201 Created")
                try await connection.send(health)
                try await connection.waitFor("HTTP/1.1 200 OK", count: 2)
                try await connection.send(create + missing + health + create)
                try await connection.waitFor("HTTP/1.1 201 Created", count: 3)
                try await connection.waitFor("HTTP/1.1 200 OK", count: 3)
            }
            // Bodies end without a line break: the next status line may follow one directly.
            let statuses = connection.text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { "HTTP/1.1 " + $0.prefix(3) }
            #expect(statuses == ["HTTP/1.1 200", "HTTP/1.1 201", "HTTP/1.1 200", "HTTP/1.1 201", "HTTP/1.1 404", "HTTP/1.1 200", "HTTP/1.1 201"])
            await connection.close()
        }
    }

    /// As Node answered the original's clients: `100 Continue` before the body is sent (curl
    /// otherwise waits a second for it), on the first request of a connection and later ones.
    @Test func expectContinueIsAnsweredBeforeTheBody() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("patient")
        try await test.live { client in
            let connection = try await RawConnection.connect(port: try #require(client.port))
            let body = #"{"amount":250}"#
            let head =
                "POST /api/v1/agent/rebalance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            try await withDeadline("two requests, each continued then created", within: .seconds(10)) {
                for round in 1...2 {
                    try await connection.send(head)
                    // Nothing of the body has been sent: this is the interim answer.
                    try await connection.waitFor("HTTP/1.1 100 Continue\r\n\r\n", count: round)
                    try await connection.send(body)
                    try await connection.waitFor("HTTP/1.1 201 Created", count: round)
                }
            }
            await connection.close()
            // Any other expectation: 417.
            let refused = try await RawHTTPExchange.send(
                "POST /api/v1/agent/rebalance HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}",
                port: try #require(client.port))
            #expect(refused.hasPrefix("HTTP/1.1 417"), "\(refused.prefix(100))")
        }
    }

    @Test func statsAndMetricsAreServed() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.gateway.makeApplication().test(.router) { client in
            _ = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: Self.auth(token), body: ByteBuffer(string: "{}"))
            let stats = try await client.execute(uri: "/api/v1/stats", method: .get)
            #expect(stats.status == .ok)
            #expect(stats.json?["queueLength"] == 1)
            #expect(stats.json?["processing"] == 0)
            #expect(stats.json?["connections"] == 0)
            #expect(stats.json?["jobs"]?["rebalance"]?["created"] == 1)

            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            let text = String(buffer: metrics.body)
            #expect(text.contains("switchboard_jobs_created_total 1"))
            #expect(text.contains("# TYPE switchboard_status_messages_total counter"))
            #expect(text.contains("switchboard_sessions_open 0"))
            // Every family says what it counts.
            let families = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
            let described = Set(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
            #expect(families.count >= 10 && families.allSatisfy(described.contains), "\(families.filter { !described.contains($0) })")
        }
    }

    @Test func livePageIsSelfContained() async throws {
        let test = try await TestGateway(withAgent: false)
        try await test.gateway.makeApplication().test(.router) { client in
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            let html = String(buffer: page.body)
            #expect(html.contains(#"const TYPES = ["rebalance"];"#))
            #expect(html.contains(#"fetch("/api/v1/agent/" + encodeURIComponent($("type").value)"#))
            #expect(!html.contains("<script src"))
            #expect(!html.contains("http://") && !html.contains("https://"))
        }
    }

    /// The page creates and follows jobs of the types the gateway serves, not a fixed one; a
    /// type's name cannot end the page's script.
    @Test func livePageOffersTheGatewaysJobTypes() async throws {
        let router = JobRouter(
            broker: MemoryBroker(),
            configuration: RouterConfiguration(jobTypes: [JobNames(type: "swap"), JobNames(type: "x</script>")]))
        let gateway = Gateway(
            configuration: GatewayConfiguration(port: 0), router: router,
            authority: try await TokenAuthority(secret: TestGateway.secret))
        try await gateway.makeApplication().test(.router) { client in
            let html = String(buffer: try await client.execute(uri: "/", method: .get).body)
            #expect(html.contains(#"const TYPES = ["swap","x\u003c/script>"];"#))
            #expect(html.components(separatedBy: "</script>").count == 2)
        }
    }

    @Test func demoTokenOnlyInDemoMode() async throws {
        let production = try await TestGateway(withAgent: false)
        try await production.gateway.makeApplication().test(.router) { client in
            let response = try await client.execute(uri: "/api/v1/demo-token", method: .get)
            #expect(response.status == .notFound)
        }
        let demo = try await TestGateway(
            configuration: GatewayConfiguration(port: 0, demoMode: true), withAgent: false, demoUser: "demo-user")
        try await demo.gateway.makeApplication().test(.router) { client in
            let response = try await client.execute(uri: "/api/v1/demo-token", method: .get)
            #expect(response.status == .ok)
            let token = try #require(response.json?["token"]?.stringValue)
            #expect(try await demo.authority.authenticate(token) == "demo-user")
        }
    }

    @Test func corsHeadersFollowTheConfiguredOrigin() async throws {
        let test = try await TestGateway(
            configuration: GatewayConfiguration(port: 0, corsOrigin: "https://app.example"), withAgent: false)
        try await test.gateway.makeApplication().test(.router) { client in
            let preflight = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .options,
                headers: [.origin: "https://app.example", .accessControlRequestMethod: "POST"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example")
            #expect(preflight.headers[.accessControlAllowHeaders] == "authorization, content-type, last-event-id")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("POST") == true)
            // Headers a browser app adds of its own (tracing, request ids) are allowed, as the
            // original's Express cors middleware allowed them; a refused preflight fails the request.
            let tracing = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .options,
                headers: [
                    .origin: "https://app.example", .accessControlRequestMethod: "POST",
                    .accessControlRequestHeaders: "authorization,content-type,sentry-trace,baggage",
                ])
            #expect(tracing.status == .noContent)
            #expect(tracing.headers[.accessControlAllowHeaders] == "authorization,content-type,sentry-trace,baggage")
            #expect(tracing.headers[values: .vary].contains("Access-Control-Request-Headers"))
            #expect(tracing.headers[values: .vary].contains("Origin"))
            #expect(tracing.headers[.accessControlAllowCredentials] == "true")
            let unauthorized = try await client.execute(
                uri: "/api/v1/agent/rebalance", method: .post, headers: [.origin: "https://app.example"])
            #expect(unauthorized.status == .unauthorized)
            #expect(unauthorized.headers[.accessControlAllowOrigin] == "https://app.example")
            #expect(unauthorized.headers[.accessControlAllowCredentials] == "true")
        }
    }
}

@Suite("Listening")
struct ListeningTests {
    /// `switchboard serve` on a port another process holds: an error that says so and what to
    /// do, not the socket call's own words.
    @Test func aPortInUseIsAClearError() async throws {
        let holder = try await TestGateway(withAgent: false)
        try await holder.live { client in
            let port = try #require(client.port)
            let second = try await TestGateway(configuration: GatewayConfiguration(port: port), withAgent: false)
            do {
                try await withDeadline("the second gateway to fail", within: .seconds(10)) { try await second.gateway.run() }
                Issue.record("a second gateway listened on port \(port)")
            } catch let error as ListenError {
                #expect(error.port == port)
                #expect(error.description == "cannot listen on 127.0.0.1:\(port): the port is in use by another process; stop it or choose another port (--port or PORT)")
            }
        }
    }

    @Test func aHostThatDoesNotResolveIsAClearError() async throws {
        let gateway = try await TestGateway(configuration: GatewayConfiguration(host: "no-such-host.invalid", port: 0), withAgent: false)
        do {
            try await withDeadline("the gateway to fail", within: .seconds(30)) { try await gateway.gateway.run() }
            Issue.record("listened on no-such-host.invalid")
        } catch let error as ListenError {
            #expect(error.description.hasPrefix("cannot listen on no-such-host.invalid:0: the host name does not resolve ("))
            #expect(error.description.hasSuffix("(--host or HOST)"))
        }
    }
}
