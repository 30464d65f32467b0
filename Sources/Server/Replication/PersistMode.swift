/// Where a ``RaftLeaseStore`` writes each `Ready` to its Raft storage.
public enum PersistMode: Sendable {
    /// On the store's own isolation: while the disk syncs, the store does
    /// nothing else. What a node alone runs with (measured faster there:
    /// its loop is the busy part, and the hand-offs only add to it), and
    /// tools and tests that want one thread.
    case inline
    /// On `thread`, while the store keeps stepping peers' messages and taking
    /// proposals for the next `Ready`; the store resumes on `resumeOn` (the
    /// node's event loop) when the write returns. One persist is in flight at
    /// a time, and a `Ready`'s messages still go out only after its persist.
    /// A `Ready` whose only change is the commit index (no fsync) is written
    /// inline: it is short, and nothing is in flight before it.
    case offloaded(PersistThread, resumeOn: (any TaskExecutor)?)

    /// A persist thread, resuming on the node's loop: what a node in a
    /// cluster runs with.
    public static func offloaded(resumeOn eventLoop: NodeEventLoop) -> PersistMode {
        .offloaded(.shared, resumeOn: eventLoop.executor)
    }
}
