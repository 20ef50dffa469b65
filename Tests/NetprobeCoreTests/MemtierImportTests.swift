import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// memtier_benchmark is not packaged for Debian 12, so these fixtures follow its documented
/// --json-out-file shapes (1.2: Ops/sec + Latency; 1.3+: Count, Average Latency, Percentile
/// Latencies), in milliseconds.
@Suite("memtier JSON import")
struct MemtierImportTests {
    func write(_ text: String) throws -> TempFile { try TempFile(Array(text.utf8), suffix: ".json") }

    @Test("1.3+ shape: counts, averages and percentiles, converted to microseconds")
    func newShape() throws {
        let f = try write(#"{"ALL STATS": {"Totals": {"Count": 100, "Ops/sec": 2500.5, "Average Latency": 0.25, "Percentile Latencies": {"p50.00": 0.2, "p99.00": 1.5}}}}"#)
        let s = try MemtierImport.read(path: f.path)
        #expect(s.rows.count == 1)
        #expect(s.rows[0].name == "Totals")
        #expect(s.rows[0].count == 100)
        #expect(s.rows[0].opsPerSecond == 2500.5)
        #expect(s.rows[0].averageLatencyUs == 250)
        #expect(s.rows[0].percentilesUs == ["p50.00": 200, "p99.00": 1500])
    }

    @Test("1.2 shape: Latency instead of Average Latency")
    func oldShape() throws {
        let f = try write(#"{"ALL STATS": {"Sets": {"Ops/sec": 10, "Latency": 1.0}, "Gets": {"Ops/sec": 90, "Latency": 0.5}}, "SET": []}"#)
        let s = try MemtierImport.read(path: f.path)
        #expect(s.rows.map(\.name) == ["Sets", "Gets"])
        #expect(s.rows.map(\.averageLatencyUs) == [1000, 500])
    }

    @Test("other files are refused with the file named", arguments: ["not json", #"{"x": 1}"#, #"{"ALL STATS": {}}"#])
    func refused(text: String) throws {
        let f = try write(text)
        #expect(throws: MemtierImport.ImportError.self) { try MemtierImport.read(path: f.path) }
        do { _ = try MemtierImport.read(path: f.path) } catch { #expect("\(error)".contains(f.path)) }
    }
}
