import NIOCore
import NIOHTTP1

/// What a cleanup target answered over HTTP, as far as a delivery needs it.
struct CleanupAnswer: Sendable, Equatable {
    var status: UInt
    var location: String?
    /// The first ``CleanupAnswerExcerpt/keptBodyBytes`` of the body, for
    /// failure messages.
    var bodyPrefix: String
    /// The connection may carry another request: the answer was complete,
    /// HTTP/1.1 keep-alive, and its body within the read cap. Always false
    /// from async-http-client (`https://`), which manages its own.
    var reusable: Bool
}

/// Collects a ``CleanupAnswer`` as a response arrives: the status,
/// `Location`, the first ``keptBodyBytes`` of the body, and how much of the
/// body was read (both HTTP paths stop reading at a cap).
struct CleanupAnswerExcerpt: Sendable {
    /// Bytes of the body kept for ``CleanupAnswer/bodyPrefix``.
    static let keptBodyBytes = 200

    private var status: UInt = 0
    private var location: String?
    private var kept = ByteBuffer()
    private var read = 0

    mutating func head(_ head: HTTPResponseHead) {
        status = head.status.code
        location = head.headers.first(name: "location")
    }

    /// Adds a part of the body; true once `maxBodyBytes` have been read in
    /// all (the rest is not waited for).
    mutating func body(_ part: ByteBuffer, maxBodyBytes: Int) -> Bool {
        read += part.readableBytes
        if kept.readableBytes < Self.keptBodyBytes {
            var piece = part
            if let slice = piece.readSlice(length: min(piece.readableBytes, Self.keptBodyBytes - kept.readableBytes)) {
                kept.writeImmutableBuffer(slice)
            }
        }
        return read >= maxBodyBytes
    }

    func answer(reusable: Bool) -> CleanupAnswer {
        CleanupAnswer(status: status, location: location, bodyPrefix: String(buffer: kept), reusable: reusable)
    }
}
