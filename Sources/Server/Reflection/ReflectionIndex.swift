import Foundation
import GCProto
import SwiftProtobuf

/// What server reflection can tell: the served services' names, and the
/// `.proto` files (as `FileDescriptorProto`s) that declare them and what they
/// import. Built once; looking up is a dictionary read.
///
/// Symbols are the fully-qualified protobuf names: packages' services
/// (`distributed_gc.DistributedGCService`), methods
/// (`distributed_gc.DistributedGCService.CreateLease`), messages and nested
/// messages, fields, oneofs, enums, enum values (which protobuf scopes beside
/// their enum, not inside it) and extensions.
public struct ReflectionIndex: Sendable {
    /// The services offered, sorted by name (what `list_services` answers).
    public let services: [String]
    /// Each file's name → its descriptor.
    private let files: [String: Google_Protobuf_FileDescriptorProto]
    /// Each file's name → its serialized descriptor (what answers carry).
    private let serializedFiles: [String: Data]
    /// Fully-qualified symbol → the name of the file that declares it.
    private let symbols: [String: String]
    /// Fully-qualified extended message → extension number → declaring file.
    private let extensions: [String: [Int32: String]]
    /// The fully-qualified names of the services the files declare.
    private let declaredServices: Set<String>

    /// An index of `files` (any order) offering `services`. A file whose
    /// name repeats keeps its first descriptor.
    public init(files fileList: [Google_Protobuf_FileDescriptorProto], services: [String]) throws {
        var files: [String: Google_Protobuf_FileDescriptorProto] = [:]
        var serializedFiles: [String: Data] = [:]
        var symbols: [String: String] = [:]
        var extensions: [String: [Int32: String]] = [:]
        var declaredServices: Set<String> = []
        for file in fileList where files[file.name] == nil {
            files[file.name] = file
            serializedFiles[file.name] = try file.serializedBytes()
            let package = file.package
            func add(_ name: String) { symbols[name] = symbols[name] ?? file.name }
            func addExtensions(_ fields: [Google_Protobuf_FieldDescriptorProto], scope: String) {
                for field in fields {
                    add(Self.qualified(field.name, in: scope))
                    extensions[Self.unrooted(field.extendee), default: [:]][field.number] = file.name
                }
            }
            func addEnums(_ enums: [Google_Protobuf_EnumDescriptorProto], scope: String) {
                for e in enums {
                    add(Self.qualified(e.name, in: scope))
                    for value in e.value { add(Self.qualified(value.name, in: scope)) }
                }
            }
            func addMessages(_ messages: [Google_Protobuf_DescriptorProto], scope: String) {
                for message in messages {
                    let name = Self.qualified(message.name, in: scope)
                    add(name)
                    for field in message.field { add(Self.qualified(field.name, in: name)) }
                    for oneof in message.oneofDecl { add(Self.qualified(oneof.name, in: name)) }
                    addEnums(message.enumType, scope: name)
                    addExtensions(message.extension, scope: name)
                    addMessages(message.nestedType, scope: name)
                }
            }
            addMessages(file.messageType, scope: package)
            addEnums(file.enumType, scope: package)
            addExtensions(file.extension, scope: package)
            for service in file.service {
                let name = Self.qualified(service.name, in: package)
                add(name)
                declaredServices.insert(name)
                for method in service.method { add(Self.qualified(method.name, in: name)) }
            }
        }
        self.services = services.sorted()
        self.files = files
        self.serializedFiles = serializedFiles
        self.symbols = symbols
        self.extensions = extensions
        self.declaredServices = declaredServices
    }

    /// The services among ``services`` that no indexed file declares: a
    /// service registered without its `.proto` in the descriptor set
    /// (scripts/generate-protos.sh's `CLIENT_PORT_PROTOS`). Listed, but not
    /// describable; should be empty.
    public var undeclaredServices: [String] {
        services.filter { !declaredServices.contains($0) }
    }

    /// The name of the file that declares `symbol` (fully qualified, with or
    /// without a leading dot), or nil.
    public func file(declaring symbol: String) -> String? {
        symbols[Self.unrooted(symbol)]
    }

    /// The file that declares extension `number` of `messageType`, or nil.
    public func file(declaringExtension number: Int32, of messageType: String) -> String? {
        extensions[Self.unrooted(messageType)]?[number]
    }

    /// The extension numbers of `messageType` (sorted; empty when it has
    /// none), or nil when no indexed file declares such a message.
    public func extensionNumbers(of messageType: String) -> [Int32]? {
        let name = Self.unrooted(messageType)
        guard let file = symbols[name].flatMap({ files[$0] }), Self.declaresMessage(name, in: file) else { return nil }
        return (extensions[name]?.keys).map { $0.sorted() } ?? []
    }

    /// `name` first, then every file it imports, directly or not, each once
    /// (as grpc-go answers); nil when `name` is not indexed. Imports that
    /// are not indexed are left out.
    public func fileWithDependencies(_ name: String) -> [String]? {
        guard files[name] != nil else { return nil }
        var order: [String] = []
        var seen: Set<String> = []
        var pending = [name]
        while let next = pending.popLast() {
            guard let file = files[next], seen.insert(next).inserted else { continue }
            order.append(next)
            pending.append(contentsOf: file.dependency.reversed())
        }
        return order
    }

    /// The serialized descriptors of ``fileWithDependencies(_:)``.
    public func serializedFileWithDependencies(_ name: String) -> [Data]? {
        fileWithDependencies(name)?.compactMap { serializedFiles[$0] }
    }

    private static func declaresMessage(_ name: String, in file: Google_Protobuf_FileDescriptorProto) -> Bool {
        func search(_ messages: [Google_Protobuf_DescriptorProto], scope: String) -> Bool {
            messages.contains { message in
                let qualified = qualified(message.name, in: scope)
                return qualified == name || search(message.nestedType, scope: qualified)
            }
        }
        return search(file.messageType, scope: file.package)
    }

    static func qualified(_ name: String, in scope: String) -> String {
        scope.isEmpty ? name : "\(scope).\(name)"
    }

    static func unrooted(_ name: String) -> String {
        name.hasPrefix(".") ? String(name.dropFirst()) : name
    }
}
