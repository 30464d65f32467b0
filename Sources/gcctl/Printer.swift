import Foundation
import GCProto
import SwiftProtobuf

/// Prints a response as an aligned table or as protobuf JSON.
struct Printer {
    let format: OutputFormat

    func print(_ message: some SwiftProtobuf.Message, table: () -> [[String]]) throws {
        switch format {
        case .json:
            var options = JSONEncodingOptions()
            options.alwaysPrintEnumsAsInts = false
            Swift.print(try message.jsonString(options: options))
        case .table:
            Swift.print(render(table()), terminator: "")
        }
    }

    /// Left-aligned columns separated by two spaces; the first row is the header.
    func render(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = Array(repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for row in rows {
            let cells = row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }
            out += cells.joined(separator: "  ") + "\n"
        }
        return out
    }
}

func format(_ timestamp: Google_Protobuf_Timestamp) -> String {
    guard timestamp.seconds != 0 || timestamp.nanos != 0 else { return "-" }
    return ISO8601DateFormatter().string(from: timestamp.date)
}

func name(_ type: DistributedGc_ObjectType) -> String {
    ObjectTypeArgument.allCases.first { $0.wire == type }?.rawValue ?? "unspecified"
}

func name(_ state: DistributedGc_LeaseState) -> String {
    LeaseStateArgument.allCases.first { $0.wire == state }?.rawValue ?? "unknown(\(state.rawValue))"
}

func name(_ state: DistributedGc_CleanupState) -> String {
    switch state {
    case .cleanupNone: "-"
    case .cleanupPending: "pending"
    case .cleanupSucceeded: "succeeded"
    case .cleanupDeadLettered: "dead-lettered"
    case .cleanupSuperseded: "superseded"
    case .UNRECOGNIZED(let value): "unknown(\(value))"
    }
}
