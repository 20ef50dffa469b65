/// Reads a trace file and builds its report: the whole of `netprobe report` minus the printing.
public enum ReportBuilder {
    /// Analyses `path`. Throws only when the file cannot be opened or is not a trace at all; damage
    /// later in the file is recorded in the report (`trace.error`) after everything before it.
    public static func build(path: String, options: AnalysisOptions = AnalysisOptions(),
                             onRequest: @escaping (RequestTiming) -> Void = { _ in }) throws -> (Report, TraceAnalysis) {
        let reader = try TraceReader(path: path)
        let analysis = TraceAnalyzer(options: options).analyze(reader, onRequest: onRequest)
        let blocks = reader.customBlocks.compactMap { NetprobeBlock.decode(enterpriseNumber: $0.pen, payload: $0.payload) }
        var report = Report(analysis: analysis, file: path, format: reader.format.rawValue, sections: reader.sections,
                            context: CaptureContext(blocks: blocks))
        // netprobe traces name each interface's role in if_description; show it in the listing.
        if let roles = report.capture?.roles {
            for i in report.trace.vantagePoints.indices where report.trace.vantagePoints[i].description == nil {
                report.trace.vantagePoints[i].description = roles[report.trace.vantagePoints[i].name]
            }
        }
        return (report, analysis)
    }
}
