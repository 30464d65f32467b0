extension LeaseLimits {
    /// The problem with a lease id a client sent (empty, too long), or nil.
    public static func checkLeaseID(_ id: String) -> LeaseError? {
        checkID(id, field: "lease_id")
    }
}
