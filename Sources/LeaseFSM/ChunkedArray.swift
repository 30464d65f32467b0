/// An array stored in fixed-size chunks of ``chunkSize`` elements.
///
/// Why: the store hands a copy of the state machine to the task that encodes
/// a snapshot and goes on applying commands to its own. With a plain array,
/// the first write after that copies the whole array (a million leases: a
/// hundred megabytes and a million retains) on the store's isolation, which
/// stalls every write, and keeps two copies alive while the snapshot is
/// encoded. Here a copy shares the chunks, and a write to a shared copy
/// duplicates the outer table of chunk references and the one chunk written
/// (``chunkSize`` elements). Reads cost one extra indirection.
struct ChunkedArray<Element>: RandomAccessCollection, MutableCollection {
    /// Elements per chunk (a power of two).
    static var chunkSize: Int { 1 << chunkShift }
    private static var chunkShift: Int { 10 }
    private static var offsetMask: Int { chunkSize - 1 }

    private var chunks: [[Element]] = []
    /// The number of elements.
    private(set) var count = 0

    init() {}

    /// The elements of `elements`, in order.
    init(_ elements: some Sequence<Element>) {
        for element in elements { append(element) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(position: Int) -> Element {
        get {
            precondition(position >= 0 && position < count, "ChunkedArray index out of range")
            return chunks[position >> Self.chunkShift][position & Self.offsetMask]
        }
        set {
            precondition(position >= 0 && position < count, "ChunkedArray index out of range")
            chunks[position >> Self.chunkShift][position & Self.offsetMask] = newValue
        }
    }

    /// Adds `element` at the end; starts a new chunk when the last is full.
    /// The first chunk grows by doubling up to ``chunkSize``, so a small
    /// array stays small; later ones are allocated whole (growing them by
    /// doubling copied every element about twice).
    mutating func append(_ element: Element) {
        if count & Self.offsetMask == 0 {
            var chunk: [Element] = []
            if count > 0 { chunk.reserveCapacity(Self.chunkSize) }
            chunk.append(element)
            chunks.append(chunk)
        } else {
            chunks[chunks.count - 1].append(element)
        }
        count += 1
    }

    /// Elements the chunks allocated so far can hold.
    var capacity: Int { chunks.isEmpty ? 0 : (chunks.count - 1) * Self.chunkSize + chunks[chunks.count - 1].capacity }

    /// Makes room in the table of chunks for `minimumCapacity` elements
    /// (chunks themselves are allocated as they fill).
    mutating func reserveCapacity(_ minimumCapacity: Int) {
        chunks.reserveCapacity((minimumCapacity + Self.offsetMask) >> Self.chunkShift)
    }

    /// Removes the elements for which `shouldBeRemoved` is true, keeping the
    /// order of the others, in chunks sized for what is left.
    mutating func removeAll(where shouldBeRemoved: (Element) throws -> Bool) rethrows {
        var kept = ChunkedArray()
        for element in self where try !shouldBeRemoved(element) { kept.append(element) }
        self = kept
    }
}

extension ChunkedArray: Sendable where Element: Sendable {}
