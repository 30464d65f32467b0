import ArgumentParser
import Dispatch
import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `gcctl lease watch`: follows `WatchLeases`, one line per event, until
/// Ctrl-C; a broken stream resumes after the last event seen (on the next
/// endpoint when its node is down), so no event is lost or printed twice.
struct LeaseWatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print lease events as they happen, until Ctrl-C.",
        discussion: """
            Each line starts with the event's position INDEX.POSITION (the log index of the \
            command that caused it, and its place among that command's events); pass it to \
            --from to resume after it. Without --from, the watch starts at the node's applied \
            index (new events only). When the stream breaks, gcctl resumes after the last \
            event printed, trying the endpoints in turn. With -w json, each event is one line \
            of protobuf JSON.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Only events of this service.") var service: String = ""
    @Option(help: ArgumentHelp("Resume after this event position: INDEX or INDEX.POSITION, as printed.", valueName: "position"))
    var from: WatchPosition?

    func run() async throws {
        let interrupt = Interrupt.exitOnControlC()
        defer { interrupt.cancel() }
        let endpoints = connection.endpointList
        let format = connection.output
        let options = connection
        var cursor = from
        // The endpoint in use, and how many attempts in a row failed.
        var current = 0
        var failures = 0
        while true {
            let endpoint = endpoints[current]
            var problem: String
            do {
                cursor = try await NodeConnection.connect(endpoint, options) { client in
                    try await Self.follow(DistributedGc_DistributedGCService.Client(wrapping: client), service: service,
                                          from: cursor, format: format, callOptions: options.callOptions)
                }
                problem = "\(endpoint) ended the stream"
                failures = 0
            } catch let error as WatchBroke {
                // Events arrived before the break: try this endpoint again first.
                cursor = error.cursor
                problem = CommandFailure(error.error, endpoint: endpoint, timeout: options.timeout).description
                failures = 0
            } catch let error as RPCError where Self.resumable.contains(error.code) {
                problem = CommandFailure(error, endpoint: endpoint, timeout: options.timeout).description
                failures += 1
                current = (current + 1) % endpoints.count
            } catch let error as RPCError {
                // OUT_OF_RANGE (events no longer retained), PERMISSION_DENIED, ...: no use retrying.
                throw CommandFailure(error, endpoint: endpoint, timeout: options.timeout)
            }
            let resume = cursor.map { " after \($0)" } ?? ""
            Diagnostics.write("watch: \(problem); resuming\(resume) on \(endpoints[current])")
            // A pause once every endpoint failed in turn, so that a cluster
            // that is down is not hammered.
            if failures > 0 && failures % endpoints.count == 0 {
                try await Task.sleep(for: .milliseconds(min(2_000, 250 * failures / endpoints.count)))
            }
        }
    }

    /// Failures after which the watch resumes (elsewhere, or later).
    static let resumable: Set<RPCError.Code> = [.unavailable, .deadlineExceeded, .cancelled, .unknown, .internalError, .aborted]

    /// A stream that delivered events and then broke: where to resume.
    struct WatchBroke: Error {
        var cursor: WatchPosition
        var error: RPCError
    }

    /// Follows one stream from `from` (nil: from the node's applied index),
    /// printing each event; returns the last position when the stream ends.
    static func follow(
        _ client: DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>, service: String,
        from: WatchPosition?, format: OutputFormat, callOptions: CallOptions
    ) async throws -> WatchPosition? {
        var start = from
        if start == nil {
            // A definite starting point, so that a break before the first
            // event still resumes without losing one.
            let health = try await client.healthCheck(DistributedGc_HealthCheckRequest(), options: callOptions)
            start = WatchPosition(index: health.appliedIndex, position: nil)
        }
        var request = DistributedGc_WatchLeasesRequest()
        request.serviceID = service
        if let start {
            request.afterIndex = start.index
            if let position = start.position { request.afterPosition = position }
        }
        var streamOptions = CallOptions.defaults
        streamOptions.waitForReady = false
        let first = start
        return try await client.watchLeases(request, options: streamOptions) { response in
            var cursor = first
            do {
                for try await event in response.messages {
                    try Self.print(event, format: format)
                    cursor = WatchPosition(index: event.index, position: event.position)
                }
            } catch let error as RPCError {
                guard let cursor, cursor != first else { throw error }
                throw WatchBroke(cursor: cursor, error: error)
            }
            return cursor
        }
    }

    static func print(_ event: DistributedGc_LeaseEvent, format style: OutputFormat) throws {
        switch style {
        case .json:
            Swift.print(try event.jsonString())
        case .table:
            var fields = ["\(event.index).\(event.position)", timestamp(event.at), kindName(event.kind), event.leaseID,
                          event.serviceID, "\(name(event.objectType)) \(event.objectID)"]
            if event.kind == .created || event.kind == .renewed { fields.append("expires \(timestamp(event.expiresAt))") }
            if event.attempt > 0 { fields.append("attempt \(event.attempt)") }
            if !event.reason.isEmpty { fields.append("(\(event.reason))") }
            Swift.print(fields.joined(separator: "  "))
        }
        // Each event reaches a pipe at once.
        fflush(nil)
    }

    static func kindName(_ kind: DistributedGc_LeaseEvent.Kind) -> String {
        switch kind {
        case .unspecified: "UNSPECIFIED"
        case .created: "CREATED"
        case .renewed: "RENEWED"
        case .released: "RELEASED"
        case .expired: "EXPIRED"
        case .cleanupSucceeded: "CLEANUP_SUCCEEDED"
        case .cleanupFailed: "CLEANUP_FAILED"
        case .cleanupDeadLettered: "CLEANUP_DEAD_LETTERED"
        case .cleanupSuperseded: "CLEANUP_SUPERSEDED"
        case .cleanupRetried: "CLEANUP_RETRIED"
        case .UNRECOGNIZED(let value): "KIND_\(value)"
        }
    }
}

/// Where a watch resumes: after event `position` of log index `index`, or
/// after the whole index when `position` is nil. Written INDEX[.POSITION].
struct WatchPosition: ExpressibleByArgument, Equatable, Sendable, CustomStringConvertible {
    var index: UInt64
    var position: UInt32?

    init(index: UInt64, position: UInt32?) {
        self.index = index
        self.position = position
    }

    init?(argument: String) {
        let parts = argument.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let index = UInt64(parts[0]) else { return nil }
        self.index = index
        if parts.count == 2 {
            guard let position = UInt32(parts[1]) else { return nil }
            self.position = position
        } else {
            position = nil
        }
    }

    var description: String { position.map { "\(index).\($0)" } ?? "\(index)" }
}

/// Ctrl-C ends a long-running command at once with status 130 (as the shell
/// reports a SIGINT), after flushing what it printed.
enum Interrupt {
    /// Installs the handler; it stays until the returned source is cancelled.
    static func exitOnControlC() -> any DispatchSourceSignal {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            fflush(nil)
            exit(130)
        }
        source.resume()
        return source
    }
}

/// An event time as the other commands print it.
private func timestamp(_ value: Google_Protobuf_Timestamp) -> String { format(value) }
