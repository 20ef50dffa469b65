// NetprobeCore: everything that reads and analyses bytes, as one import for the command line,
// the capture, the lab, the benchmarks and the fuzzers. The modules follow the data:
//   NetprobeModel        the typed vocabulary (roles, segments, setups, durations, HOST:PORT)
//   NetprobeTrace        the trace pipeline: read, decode, reassemble, RESP, pair, join
//   NetprobeAttribution  where each request's time goes, in stages, and the verdict as numbers
//   NetprobeReport       the report model and every sentence: text, JSON, HTML, compare
@_exported import NetprobeModel
@_exported import NetprobeTrace
@_exported import NetprobeAttribution
@_exported import NetprobeReport
