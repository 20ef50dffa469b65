import NetprobeCore

/// What libFuzzer calls for every input: return 0, or -1 to keep the input out of the corpus.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>, Int) -> Int32

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback) -> Int32

/// The entry point of every target. SwiftPM links an executable's entry as `<Target>_main`; each
/// target defines that symbol and calls this.
///
/// `TARGET --write-seeds TRACES DIR` writes the target's seed inputs (made by `seeds` from the
/// captures in TRACES) into DIR and exits; any other command line goes to libFuzzer's driver.
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                       seeds: (_ traces: String) throws -> [Seed], _ callback: FuzzCallback) -> Int32 {
    if argc == 4, let argv, let flag = argv[1], String(cString: flag) == "--write-seeds",
       let traces = argv[2], let directory = argv[3] {
        do {
            let made = try seeds(String(cString: traces))
            try writeSeeds(made, to: String(cString: directory))
            return 0
        } catch {
            print("cannot write seeds: \(error)")
            return 1
        }
    }
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector, callback)
}

/// Keeps values read by the targets alive, so the optimiser cannot drop the reads (and with them
/// the sanitizer's checks).
nonisolated(unsafe) public var sink = 0

/// Stops the fuzzer with `message` when a documented property of the code under test does not
/// hold (a crash, as a memory error would be).
@inline(__always)
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                  file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("property violated: \(message())", file: file, line: line) }
}

/// Whether `inner` lies within `outer` (a view handed out must point into the bytes it came from).
public func contains(_ outer: UnsafeRawBufferPointer, _ inner: UnsafeRawBufferPointer) -> Bool {
    guard inner.count > 0 else { return true }
    guard let o = outer.baseAddress, let i = inner.baseAddress else { return false }
    return i >= o && i + inner.count <= o + outer.count
}
