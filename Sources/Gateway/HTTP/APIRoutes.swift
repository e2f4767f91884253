import HTTPTypes
import Broker
import Foundation
import Hummingbird
import Logging

/// The job API of SPEC §2: create a job, read one's record (owner only), and in the
/// memory-backed demo a token for the live page.
struct APIRoutes: Sendable {
    let gateway: Gateway

    func register(on router: Hummingbird.Router<GatewayRequestContext>) {
        for store in gateway.router.stores.values {
            let type = store.names.type
            router.post("/api/v1/agent/\(type)") { request, context in
                try await createJob(request, context: context, store: store)
            }
            router.get("/api/v1/\(type)/:jobId") { request, context in
                try await readJob(request, context: context, store: store)
            }
        }
        router.get("/api/v1/demo-token") { _, _ in try await demoToken() }
        // A job type this gateway does not serve is named, not a bare "not found".
        let served = gateway.router.stores.values.map(\.names.type).sorted().joined(separator: ", ")
        router.post("/api/v1/agent/:type") { _, context -> Response in
            let type = context.parameters.get("type") ?? ""
            throw GatewayError.notFound("unknown job type '\(type.prefix(64))': this gateway serves \(served)")
        }
        for store in gateway.router.stores.values {
            refuseOtherMethods(on: "/api/v1/agent/\(store.names.type)", allowing: .post, router: router)
            refuseOtherMethods(on: "/api/v1/\(store.names.type)/:jobId", allowing: .get, router: router)
        }
    }

    /// Answers the methods a path does not take with 405 and `Allow`, as HTTP asks (RFC 9110
    /// §15.5.6): a GET on the create route reads as a mistyped path when answered 404.
    private func refuseOtherMethods(
        on path: String, allowing allowed: HTTPRequest.Method, router: Hummingbird.Router<GatewayRequestContext>
    ) {
        let allow = allowed == .get ? "GET, HEAD" : allowed.rawValue
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] where method != allowed {
            router.on(RouterPath(path), method: method) { _, _ -> Response in
                throw HTTPError(.methodNotAllowed, headers: [.allow: allow], message: "method not allowed: this path takes \(allow)")
            }
        }
    }

    private func createJob(_ request: Request, context: GatewayRequestContext, store: JobStore) async throws -> Response {
        var request = request
        let userId = try await gateway.authenticate(request.presentedToken)
        let payload = try await request.jsonObject(limit: gateway.configuration.maxBodySize)
        let record: JobRecord
        do {
            record = try await store.create(payload: .object(payload), for: userId)
        } catch let error as JobError {
            throw GatewayError.badRequest(error.description)
        } catch let error as BrokerError {
            gateway.logThrottle.log(
                "backend", .warning, "job not created: backend failed", metadata: ["error": "\(error)"], to: context.logger)
            if error.code == .outOfMemory {
                throw GatewayError.unavailable("backend out of memory: no job can be created until memory is freed; try again later")
            }
            throw GatewayError.unavailable("backend unavailable")
        }
        gateway.metrics.jobCreated()
        context.logger.debug("job created", metadata: ["jobId": "\(record.jobId)", "userId": "\(userId)"])
        return JSONBody.response(
            status: .created, ["jobId": .string(record.jobId), "status": .string(record.status.rawValue)])
    }

    private func readJob(_ request: Request, context: GatewayRequestContext, store: JobStore) async throws -> Response {
        let userId = try await gateway.authenticate(request.presentedToken)
        let jobId = try context.parameters.require("jobId")
        let lookup: JobLookup
        let json: [UInt8]?
        do {
            (lookup, json) = try await store.lookupWithJSON(jobId, for: userId)
        } catch let error as BrokerError {
            gateway.logThrottle.log(
                "backend", .warning, "job not read: backend failed", metadata: ["error": "\(error)"], to: context.logger)
            throw GatewayError.unavailable("backend unavailable")
        }
        if let json {
            // As stored, members other software added included (SPEC §1's member order, numbers
            // as JavaScript writes them), as the original answered with the object it had read.
            return JSONBody.response(status: .ok, bytes: json)
        }
        if lookup == .notOwner { throw GatewayError.forbidden("job belongs to another user") }
        throw GatewayError.notFound("job not found")
    }

    /// Only the memory-backed demo hands out tokens; anywhere else this route does not exist.
    private func demoToken() async throws -> Response {
        guard gateway.configuration.demoMode, let user = gateway.demoUser else {
            throw GatewayError.notFound("not found")
        }
        let token = try await gateway.authority.issue(userId: user, lifetime: .seconds(86_400))
        return JSONBody.response(status: .ok, ["token": .string(token), "userId": .string(user)])
    }
}

/// JSON response bodies.
enum JSONBody {
    static func response(status: HTTPResponse.Status, _ object: [String: JSONValue]) -> Response {
        response(status: status, bytes: JSONValue.object(object).jsonBytes)
    }

    static func response(status: HTTPResponse.Status, bytes: [UInt8]) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }
}
