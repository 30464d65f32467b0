@testable import Server
import Testing

@Suite("Backup authorization")
struct BackupPermissionTests {
    @Test("SaveSnapshot needs the operator role: a reader or a service identity is refused")
    func saveSnapshotIsOperatorOnly() {
        let permission = Permission.required(service: "distributed_gc.BackupService", method: "SaveSnapshot")
        #expect(permission == .clusterAdmin)
        #expect(permission.isHeld(by: Caller(identity: "ops", grant: .init(roles: [.operator]))))
        #expect(!permission.isHeld(by: Caller(identity: "grafana", grant: .init(roles: [.reader]))))
        #expect(!permission.isHeld(by: Caller(identity: "orders", grant: .init(services: ["orders"]))))
    }
}
