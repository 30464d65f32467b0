import Server
import Testing

/// The pure egress policy: addresses, networks, host patterns, the default
/// denials and GC_CLEANUP_ALLOW's syntax. No resolution, no traffic.
@Suite("Egress policy")
struct EgressPolicyTests {
    /// The address `text` (a failed test, and 0.0.0.0/32, when it does not parse).
    func ip(_ text: String) -> IPAddress {
        if let address = IPAddress(text) { return address }
        Issue.record("\(text) does not parse")
        return IPAddress(bytes: [0, 0, 0, 0])!  // a constant of the right length
    }

    func net(_ text: String) -> IPNetwork {
        if let network = IPNetwork(text) { return network }
        Issue.record("\(text) does not parse")
        return IPNetwork(address: ip("0.0.0.0"), prefixLength: 32)
    }
    func policy(_ allow: String) throws -> EgressPolicy { try EgressPolicy(allowlist: allow) }

    // MARK: Addresses and networks

    @Test("IPv4 and IPv6 addresses parse and print canonically; junk does not parse")
    func addresses() throws {
        #expect(ip("10.1.2.3").bytes == [10, 1, 2, 3])
        #expect(ip("::1").bytes == Array(repeating: 0, count: 15) + [1])
        #expect(ip("FE80:0:0::1").description == "fe80::1")
        #expect(ip("::ffff:169.254.169.254").description == "::ffff:169.254.169.254")
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4/8", "::g", "[::1]", "fe80::1%eth0", "localhost"] {
            #expect(IPAddress(bad) == nil, "\(bad) is not an address")
        }
    }

    @Test("CIDR parsing and containment, IPv4 and IPv6, prefix edges")
    func networks() throws {
        let ten = net("10.0.0.0/8")
        #expect(ten.contains(ip("10.255.1.2")))
        #expect(!ten.contains(ip("11.0.0.1")))
        #expect(!ten.contains(ip("::ffff:10.0.0.1")), "IPv6 is another family (the policy unwraps mapped addresses itself)")
        let host = net("127.0.0.1/32")
        #expect(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")))
        #expect(net("0.0.0.0/0").contains(ip("203.0.113.9")))
        let ula = net("fd00::/8")
        #expect(ula.contains(ip("fd12:3456::1")) && !ula.contains(ip("fe80::1")))
        let odd = net("fe80::/10")
        #expect(odd.contains(ip("febf::1")) && !odd.contains(ip("fec0::1")))
        #expect(net("172.16.0.0/12").contains(ip("172.31.255.255")))
        #expect(!(net("172.16.0.0/12")).contains(ip("172.32.0.0")))
        #expect(net("::1").prefixLength == 128, "a bare address is a host network")
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "x/8", "10.0.0.0/08a"] {
            #expect(IPNetwork(bad) == nil, "\(bad) is not a network")
        }
        #expect(net("10.0.0.0/8").contains(net("10.1.0.0/16")))
        #expect(!(net("10.1.0.0/16")).contains(net("10.0.0.0/8")))
    }

    // MARK: Default denials

    @Test("every default denial parsed")
    func tableComplete() {
        #expect(EgressPolicy.deniedNetworks.count == 9)
    }

    @Test("without an allowlist, metadata, link-local, unspecified, multicast and broadcast are denied",
          arguments: [
            "169.254.169.254", "169.254.0.1", "[fe80::1]", "[fe80::a:b%25eth0]", "[::ffff:169.254.169.254]",
            "[::ffff:a9fe:a9fe]", "[64:ff9b::169.254.169.254]", "[fd00:ec2::254]", "100.100.100.200",
            "0.0.0.0", "0.1.2.3", "[::]", "224.0.0.1", "239.255.255.250", "255.255.255.255", "[ff02::1]",
            // Numeric forms a resolver reads as 169.254.169.254 / 0.0.0.0.
            "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "0",
            "metadata", "METADATA.google.internal.", "metadata.goog", "metadata.azure.com", "instance-data",
          ])
    func defaultDenials(_ host: String) throws {
        let denial = try #require(EgressPolicy().check(host: host), "\(host) must be denied")
        #expect(denial.reason != .notAllowed)
        #expect(denial.description.contains("cleanup endpoint host \(host) is denied"), "\(denial)")
    }

    @Test("without an allowlist, loopback, private ranges and ordinary names are allowed",
          arguments: ["127.0.0.1", "localhost", "[::1]", "10.0.0.5", "192.168.1.1", "172.20.0.1", "[fd00::5]",
                      "orders", "orders.svc.cluster.local", "8.8.8.8", "[::ffff:127.0.0.1]", "metadata-service", "cafe"])
    func defaultAllows(_ host: String) {
        #expect(EgressPolicy().check(host: host) == nil, "\(host) is allowed by default")
    }

    @Test("the create-time message says which host, why, and where to look")
    func message() throws {
        let denial = try #require(EgressPolicy().check(host: "169.254.169.254"))
        #expect(denial.description == "cleanup endpoint host 169.254.169.254 is denied (link-local / cloud metadata, never allowed); see GC_CLEANUP_ALLOW")
        let resolved = try #require(EgressPolicy().check(address: ip("169.254.169.254"), resolvedFrom: "rebind.test"))
        #expect(resolved.description.contains("rebind.test resolves to 169.254.169.254, which is denied (link-local / cloud metadata, never allowed)"))
    }

    // MARK: Allowlist

    @Test("an allowlist narrows: matching names, addresses in its networks; the default denials still apply")
    func allowlist() throws {
        let p = try policy(" files.internal, *.svc.cluster.local ,10.0.0.0/8, fd00::/8,127.0.0.1/32 ")
        #expect(p.hasAllowlist)
        // Names: patterns; exact names exactly; wildcards match below, not the suffix itself.
        #expect(p.check(host: "files.internal") == nil)
        #expect(p.check(host: "FILES.internal.") == nil)
        #expect(p.check(host: "orders.prod.svc.cluster.local") == nil)
        // A name no pattern matches may still resolve into the networks: decided at delivery.
        #expect(p.check(host: "other.example") == nil)
        #expect(p.check(address: ip("10.2.3.4"), resolvedFrom: "other.example") == nil)
        #expect(p.check(address: ip("192.168.0.1"), resolvedFrom: "other.example")?.reason == .notAllowed)
        // A matching name may resolve anywhere but into the default denials.
        #expect(p.check(address: ip("192.168.0.1"), resolvedFrom: "files.internal") == nil)
        #expect(p.check(address: ip("169.254.169.254"), resolvedFrom: "files.internal")?.reason == .metadata)
        #expect(p.check(address: ip("::ffff:169.254.169.254"), resolvedFrom: "a.svc.cluster.local")?.reason == .metadata)
        // Literals: networks only.
        #expect(p.check(host: "127.0.0.1") == nil)
        #expect(p.check(host: "127.0.0.2")?.reason == .notAllowed)
        #expect(p.check(host: "[::1]")?.reason == .notAllowed)
        #expect(p.check(host: "[fd00::1]") == nil)
        #expect(p.check(host: "[::ffff:10.1.1.1]") == nil, "a mapped address is checked as its IPv4 address")
        #expect(p.check(host: "169.254.169.254")?.reason == .metadata)
        #expect(p.check(host: "metadata.google.internal")?.reason == .metadataName)
        let message = p.check(host: "127.0.0.2")?.description ?? ""
        #expect(message.contains("not in GC_CLEANUP_ALLOW") && message.contains("add the host or its network to GC_CLEANUP_ALLOW"))
    }

    @Test("an allowlist of names only refuses other names at create time")
    func namesOnly() throws {
        let p = try policy("*.svc.cluster.local")
        #expect(p.check(host: "svc.cluster.local")?.reason == .notAllowed, "a wildcard does not match its own suffix")
        #expect(p.check(host: "localhost")?.reason == .notAllowed)
        #expect(p.check(host: "a.svc.cluster.local") == nil)
        #expect(p.check(address: ip("127.0.0.1"), resolvedFrom: "localhost")?.reason == .notAllowed)
    }

    @Test("GC_CLEANUP_ALLOW entries that cannot be used are refused with the entry and the reason",
          arguments: [
            ("10.0.0.0/33", "is not a network"), ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
            ("169.254.0.0/16", "always denied"), ("169.254.169.254", "always denied"), ("fe80::/64", "always denied"),
            ("metadata.google.internal", "always denied"), ("*.", "is not a host pattern"), ("a*.b", "is not a host pattern"),
            ("http://x", "is not a"), ("a..b", "is not a host pattern"), ("[::1", "is not a network"),
          ])
    func parseErrors(_ entry: String, _ expected: String) {
        do {
            _ = try EgressPolicy(allowlist: "localhost,\(entry)")
            Issue.record("\(entry) should be refused")
        } catch {
            #expect(error.description.contains(expected), "\(error)")
            #expect(error.entry == entry)
        }
    }

    @Test("a blank allowlist is no allowlist; a broad network is accepted")
    func blank() throws {
        #expect(try !policy(" , ,").hasAllowlist)
        let all = try policy("0.0.0.0/0,::/0")
        #expect(all.check(host: "203.0.113.1") == nil)
        #expect(all.check(host: "169.254.169.254")?.reason == .metadata, "still denied under 0.0.0.0/0")
    }
}
