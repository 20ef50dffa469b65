import Foundation
import Testing
@testable import NetprobeModel

@Suite("guest specs (lab up --guest)")
struct GuestSpecTests {
    @Test("builtin, disk: and kernel: read as written, and print back the same")
    func parses() throws {
        #expect(try GuestSpec(parsing: "builtin") == .builtin)
        #expect(try GuestSpec(parsing: "disk:/img/osv.qcow2") == GuestSpec(kind: .disk, path: "/img/osv.qcow2"))
        #expect(try GuestSpec(parsing: "disk:a.img,format=raw") == GuestSpec(kind: .disk, path: "a.img", format: "raw"))
        #expect(try GuestSpec(parsing: "kernel:bzImage") == GuestSpec(kind: .kernel, path: "bzImage"))
        #expect(try GuestSpec(parsing: "kernel:k,initrd=i.gz,cmdline=console=ttyS0 np.port=6380")
                == GuestSpec(kind: .kernel, path: "k", initrd: "i.gz", cmdline: "console=ttyS0 np.port=6380"))
        for text in ["builtin", "disk:a.img", "disk:a.qcow2,format=qcow2", "kernel:k,initrd=i,cmdline=x y", "kernel:k,cmdline="] {
            #expect(try GuestSpec(parsing: text).description == text)
        }
    }

    @Test("cmdline= takes the rest as it is: Rumprun's JSON with its commas and an initrd= inside")
    func rumprunJSON() throws {
        let json = #"{"net":{"if":"vioif0","type":"inet","method":"dhcp"},"cmdline":"redis-server,initrd=x"}"#
        let spec = try GuestSpec(parsing: "kernel:/r/redis.bin,cmdline=\(json)")
        #expect(spec.path == "/r/redis.bin")
        #expect(spec.initrd == nil)
        #expect(spec.cmdline == json)
    }

    @Test("malformed specs are refused, saying why", arguments: [
        ("", "neither"), ("osv.img", "neither"), ("disk:", "no FILE"), ("disk:a,format=vmdk", "raw or qcow2"),
        ("kernel:", "no FILE"), ("kernel:k,initrd=", "initrd="), ("kernel:k,append=x", "unknown option"),
    ])
    func refuses(_ text: String, _ reason: String) {
        #expect {
            _ = try GuestSpec(parsing: text)
        } throws: { error in
            "\(error)".contains(reason) && "\(error)".contains("kernel:FILE")
        }
    }

    @Test("a lab state without the guest field (made before it) still decodes; one with it round-trips")
    func stateCoding() throws {
        let old = #"{"name":"n","setup":"bridge","namespace":"np-n","extraNamespaces":[],"redisAddress":"10.77.0.2:6379","vantages":[],"processes":[],"createdAt":"x"}"#
        let state = try JSONDecoder().decode(LabState.self, from: Data(old.utf8))
        #expect(state.guest == nil)
        var withGuest = state
        withGuest.guest = LabGuest(spec: try GuestSpec(parsing: "disk:/x.img"), diskFormat: "raw", memoryMiB: 1024, vcpus: 2,
                                   qemuArguments: ["-cpu", "max"], addressing: .dhcp, mac: "52:54:00:77:00:02")
        let data = try JSONEncoder().encode(withGuest)
        #expect(try JSONDecoder().decode(LabState.self, from: data) == withGuest)
    }
}
