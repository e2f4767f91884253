private import CZlib
import Foundation

/// The content codings a request body may arrive in, as the original's body parser (Express's
/// `express.json()`, `inflate: true`) accepted them: `identity`, `gzip` and `deflate` (the zlib
/// format, RFC 1950). Anything else is refused with 415.
enum ContentCoding: Sendable, Equatable {
    case identity, gzip, deflate

    /// The coding a `Content-Encoding` value names (case-insensitive; none is `identity`), or
    /// `nil` for one that is not supported.
    init?(header: String?) {
        switch header?.trimmingCharacters(in: .whitespaces).lowercased() {
        case nil, "", "identity": self = .identity
        case "gzip", "x-gzip": self = .gzip
        case "deflate": self = .deflate
        default: return nil
        }
    }
}

/// Why a compressed body could not be read.
enum InflateError: Error, Equatable {
    /// It inflates to more than the limit: the same 413 as an uncompressed body that size.
    case tooLarge
    /// It is not one complete stream of its coding (zlib's reason, when it gave one).
    case malformed(String)
}

/// Inflates request bodies with zlib, bounded: a small body that would inflate beyond the limit
/// (a "zip bomb") is stopped as soon as the limit is passed, having used at most that much memory.
enum BodyInflater {
    /// The whole of `compressed` inflated: exactly one gzip member or zlib stream, nothing after it.
    static func inflate(_ compressed: some Collection<UInt8>, coding: ContentCoding, limit: Int) throws(InflateError) -> [UInt8] {
        let input = Array(compressed)
        guard coding != .identity else { return input }
        var stream = z_stream()
        // 15: the largest window; +16 reads the gzip wrapper only (the zlib wrapper is the default).
        let windowBits: Int32 = coding == .gzip ? 15 + 16 : 15
        guard switchboard_inflate_init2(&stream, windowBits) == Z_OK else {
            throw .malformed("could not start zlib")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: min(limit + 1, max(1024, input.count * 4)))
        var produced = 0
        var status: Int32 = Z_OK
        try input.withUnsafeBufferPointer { (source) throws(InflateError) in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = UInt32(source.count)
            while true {
                if produced == output.count {
                    // One byte past the limit is enough to know it is too large.
                    guard output.count <= limit else { throw .tooLarge }
                    output.append(contentsOf: repeatElement(0, count: min(output.count, limit + 1 - output.count)))
                }
                status = output.withUnsafeMutableBufferPointer { target in
                    stream.next_out = target.baseAddress! + produced
                    stream.avail_out = UInt32(target.count - produced)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced = target.count - Int(stream.avail_out)
                    return status
                }
                switch status {
                case Z_STREAM_END:
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.avail_out > 0:
                    throw .malformed("the compressed body ends before its end")  // input used up first
                case Z_BUF_ERROR:
                    continue  // output full: grown above
                default:
                    throw .malformed(stream.msg.map { String(cString: $0) } ?? "zlib error \(status)")
                }
            }
        }
        guard produced <= limit else { throw .tooLarge }
        guard stream.avail_in == 0 else { throw .malformed("data follows the end of the compressed body") }
        output.removeSubrange(produced...)
        return output
    }
}
