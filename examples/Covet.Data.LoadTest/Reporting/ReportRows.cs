namespace Covet.Data.LoadTest.Reporting;

/// <summary>
/// One line of the summary table: a metric, one value per pool, and the Covet ÷ provider ratio when comparing.
/// <paramref name="IsPart"/>: a part of the row above it (drawn indented).
/// </summary>
public sealed record ReportRow(string Metric, IReadOnlyList<string> Values, Ratio? Ratio = null, bool IsPart = false);

/// <summary>The summary table's rows, shared by the console and the HTML report so they always agree.</summary>
public static class ReportRows
{
    public static IReadOnlyList<ReportRow> Build(LoadTestReport report)
    {
        var pools = report.Pools;
        Ratio? RatioOf(string metric) => report.Ratios?.FirstOrDefault(r => r.Metric == metric);
        ReportRow Row(string metric, Func<PoolSummary, string> value, string? ratio = null) =>
            new(metric, pools.Select(value).ToList(), ratio is null ? null : RatioOf(ratio));
        ReportRow Part(string metric, Func<MemoryProbeResult, double?> bytes, string? ratio = null) =>
            Row(metric, p => Format.Bytes(p.Memory is { } m ? bytes(m) : null), ratio) with { IsPart = true };
        static string Or(string? value) => value ?? "n/a";

        return
        [
            Row("operations (ok / total)", p => $"{Format.Count(p.Succeeded)} / {Format.Count(p.Operations)}"),
            Row(report.Settings.Rounds > 1 ? "time under load (each round)" : "time under load", p => p.RoundSeconds.Count > 1
                ? string.Join(" + ", p.RoundSeconds.Select(Format.Seconds))
                : Format.Seconds(p.ElapsedSeconds)),
            Row("throughput", p => Format.Rate(p.ThroughputOpsPerSecond) + " ops/s", "throughput (ops/s)"),
            Row("acquire p50", p => Format.Ms(p.Acquire.P50Ms), "acquire p50 (ms)"),
            Row("acquire p95", p => Format.Ms(p.Acquire.P95Ms), "acquire p95 (ms)"),
            Row("acquire p99", p => Format.Ms(p.Acquire.P99Ms), "acquire p99 (ms)"),
            Row("acquire max", p => Format.Ms(p.Acquire.MaxMs), "acquire max (ms)"),
            Row("acquire p50 / p99 (pool's own stats, last round)", p => p.LastRoundStatistics is { } s
                ? $"{Format.Ms(s.AcquireP50Ms)} / {Format.Ms(s.AcquireP99Ms)}"
                : "n/a"),
            Row("use p50 (open → close)", p => Format.Ms(p.Use.P50Ms), "use p50 (ms)"),
            Row("use p95", p => Format.Ms(p.Use.P95Ms)),
            Row("use p99", p => Format.Ms(p.Use.P99Ms), "use p99 (ms)"),
            Row("errors", p => Format.Count(p.Failed)),
            Row("acquire timeouts", p => Format.Count(p.AcquireTimeouts) +
                (p.PoolReportedAcquireTimeouts is { } t && t != p.AcquireTimeouts ? $" (pool says {Format.Count(t)})" : "")),
            Row("leaks detected", p => Or(p.LeaksDetected is { } l ? Format.Count(l) : null)),
            Row("connections created", p => Or(p.ConnectionsCreated is { } c ? Format.Count(c) : null)),
            Row("peak physical connections", p => Or(p.PeakPhysicalConnections is { } c ? Format.Count(c) : null)),
            Row("peak callers in OpenAsync", p => Format.Count(p.PeakCallersOpening)),
            Row("memory per pooled connection", p => Format.Bytes(p.Memory?.BytesPerPooledConnection), "bytes per pooled connection"),
            Row("memory per waiting caller", p => p.Memory is { } m && m.BytesPerWaitingCaller is { } b
                ? $"{Format.Bytes(b)} ({Format.Count(m.WaitingCallers)} waiting)"
                : "n/a", "bytes per waiting caller"),
            Part("of which the caller's connection object", m => m.ConnectionObjectBytesPerCaller),
            Part("of which the cancellation registration", m => m.CancellationRegistrationBytesPerCaller),
            Part("of which the pool's own", m => m.PoolBytesPerWaitingCaller, "pool's own bytes per waiting caller"),
        ];
    }
}
