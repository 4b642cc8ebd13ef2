using System.Text.Json.Serialization;
using Covet.Data.LoadTest.Measurement;
using Covet.Data.LoadTest.Scenarios;

namespace Covet.Data.LoadTest.Reporting;

/// <summary>The whole result of one invocation; serialised as-is by <c>--json</c>.</summary>
public sealed record LoadTestReport
{
    public required string Tool { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public required MachineInfo Machine { get; init; }
    public required string Provider { get; init; }
    public required string ConnectionString { get; init; }
    public required string Scenario { get; init; }
    public required string Description { get; init; }
    public required ScenarioSettings Settings { get; init; }
    public required IReadOnlyList<string> Notes { get; init; }
    /// <summary>One summary per pool: Covet first, then the provider's pool when comparing.</summary>
    public required IReadOnlyList<PoolSummary> Pools { get; init; }
    /// <summary>Covet ÷ provider for the main figures, when comparing.</summary>
    public IReadOnlyList<Ratio>? Ratios { get; init; }
    /// <summary>Every timed run in the order it ran.</summary>
    public required IReadOnlyList<RunResult> Runs { get; init; }
    /// <summary>The untimed warm-up before the timed rounds (null when there was none).</summary>
    public WarmUpSummary? WarmUp { get; init; }
    public required bool Failed { get; init; }
    public required IReadOnlyList<string> Failures { get; init; }
}

public sealed record MachineInfo(int ProcessorCount, string OperatingSystem, string Runtime, bool ServerGc);

public sealed record ScenarioSettings(
    int Callers, int? IterationsPerCaller, double? DurationSeconds, int MaxPoolSize, int MinPoolSize,
    double AcquireTimeoutSeconds, bool Compare, int Rounds, string Query, double HoldMs, string? CovetOptions, int ProbeWaiters);

/// <summary>One timed run of one pool.</summary>
public sealed record RunResult
{
    public required PoolKind Pool { get; init; }
    public required string Label { get; init; }
    public required int Round { get; init; }
    public required long Operations { get; init; }
    public required long Succeeded { get; init; }
    /// <summary>Operations that failed for any reason other than an acquire timeout or cancellation.</summary>
    public required long Failed { get; init; }
    /// <summary>Operations whose open gave up waiting for a connection.</summary>
    public required long AcquireTimeouts { get; init; }
    public required long Cancelled { get; init; }
    public required double ElapsedSeconds { get; init; }
    public double ThroughputOpsPerSecond => ElapsedSeconds > 0 ? Succeeded / ElapsedSeconds : 0;
    /// <summary>Time spent in <c>OpenAsync</c>, measured by the workers.</summary>
    public required LatencySummary Acquire { get; init; }
    /// <summary>Time from open to close (the query), measured by the workers.</summary>
    public required LatencySummary Use { get; init; }
    /// <summary>Largest sampled count of physical connections; null when the pool does not publish it.</summary>
    public int? PeakPhysicalConnections { get; init; }
    /// <summary>Largest sampled number of callers inside <c>OpenAsync</c>.</summary>
    public required int PeakCallersOpening { get; init; }
    /// <summary>Covet's statistics at the end of the run (null for the provider's pool).</summary>
    public CovetStatisticsSummary? PoolStatistics { get; init; }
    /// <summary>For Covet: whether the pool showed nothing in use and no one waiting once the load stopped.</summary>
    public bool? Drained { get; init; }
    /// <summary>Error messages (type: first line) and how often each happened.</summary>
    public required IReadOnlyDictionary<string, long> Errors { get; init; }
    public required IReadOnlyList<PoolSample> Samples { get; init; }

    [JsonIgnore] public LatencyRecorder AcquireSamples { get; init; } = new();
    [JsonIgnore] public LatencyRecorder UseSamples { get; init; } = new();
}

/// <summary>The figures of <see cref="CovetPoolStatistics"/> the report uses (times in ms).</summary>
public sealed record CovetStatisticsSummary(
    int Total, int Idle, int InUse, int Waiting, long Checkouts, long ConnectionsCreated, long ConnectionsDestroyed,
    long ConnectionFailures, long AcquireTimeouts, long LeaksDetected, long ForgottenConnections, long PrePingFailures, long ResetFailures,
    double AcquireP50Ms, double AcquireP95Ms, double AcquireP99Ms, double AcquireMaxMs, double UseP50Ms, double UseP95Ms, double UseP99Ms,
    string CircuitState)
{
    public static CovetStatisticsSummary From(CovetPoolStatistics s) => new(
        s.Total, s.Idle, s.InUse, s.Waiting, s.Checkouts, s.ConnectionsCreated, s.ConnectionsDestroyed,
        s.ConnectionFailures, s.AcquireTimeouts, s.LeaksDetected, s.ForgottenConnections, s.PrePingFailures, s.ResetFailures,
        s.AcquireP50.TotalMilliseconds, s.AcquireP95.TotalMilliseconds, s.AcquireP99.TotalMilliseconds, s.AcquireMax.TotalMilliseconds,
        s.UseP50.TotalMilliseconds, s.UseP95.TotalMilliseconds, s.UseP99.TotalMilliseconds, s.CircuitState.ToString());
}

/// <summary>Managed memory measured by <see cref="MemoryProbe"/>.</summary>
public sealed record MemoryProbeResult
{
    /// <summary>Physical connections added to the pool between the two heap measurements.</summary>
    public int PooledConnections { get; init; }
    /// <summary>Retained managed bytes per idle pooled connection (provider connection included).</summary>
    public double? BytesPerPooledConnection { get; init; }
    /// <summary>The individual measurements <see cref="BytesPerPooledConnection"/> is the median of.</summary>
    public IReadOnlyList<double> PooledConnectionSamples { get; init; } = [];
    /// <summary>Callers left blocked in <c>OpenAsync</c> on the exhausted pool.</summary>
    public int WaitingCallers { get; init; }
    /// <summary>Retained managed bytes per waiting caller, the probe's own per-caller cost subtracted (the total).</summary>
    public double? BytesPerWaitingCaller { get; init; }
    /// <summary>Of <see cref="BytesPerWaitingCaller"/>: the connection object the caller created (measured, never opened).</summary>
    public double? ConnectionObjectBytesPerCaller { get; init; }
    /// <summary>Of <see cref="BytesPerWaitingCaller"/>: the registration on the caller's cancellable token (measured).</summary>
    public double? CancellationRegistrationBytesPerCaller { get; init; }
    /// <summary>
    /// Of <see cref="BytesPerWaitingCaller"/>: the pool's own bookkeeping, i.e. the total less the caller's connection
    /// object and the cancellation registration.
    /// </summary>
    public double? PoolBytesPerWaitingCaller =>
        BytesPerWaitingCaller - ConnectionObjectBytesPerCaller - CancellationRegistrationBytesPerCaller;
    /// <summary>The probe's own per-caller cost: an async method like the waiter's, awaiting a never-completed task.</summary>
    public double? HarnessBytesPerCaller { get; init; }
    /// <summary>Why a figure is missing, if one is.</summary>
    public string? Note { get; init; }
    public long Errors { get; init; }
}

/// <summary>The rounds of one pool, combined.</summary>
public sealed record PoolSummary
{
    public required PoolKind Pool { get; init; }
    public required string Label { get; init; }
    public required int Rounds { get; init; }
    public required long Operations { get; init; }
    public required long Succeeded { get; init; }
    public required long Failed { get; init; }
    public required long AcquireTimeouts { get; init; }
    public required long Cancelled { get; init; }
    public required double ElapsedSeconds { get; init; }
    /// <summary>Time under load of each round (for <c>--extreme</c>: the total time of the N callers).</summary>
    public required IReadOnlyList<double> RoundSeconds { get; init; }
    public double ThroughputOpsPerSecond => ElapsedSeconds > 0 ? Succeeded / ElapsedSeconds : 0;
    public required LatencySummary Acquire { get; init; }
    public required LatencySummary Use { get; init; }
    public int? PeakPhysicalConnections { get; init; }
    public required int PeakCallersOpening { get; init; }
    /// <summary>Summed over rounds (each round has a fresh pool); null for the provider's pool.</summary>
    public long? ConnectionsCreated { get; init; }
    public long? LeaksDetected { get; init; }
    public long? PoolReportedAcquireTimeouts { get; init; }
    /// <summary>Covet's own acquire percentiles of the last round, to cross-check the workers' measurement.</summary>
    public CovetStatisticsSummary? LastRoundStatistics { get; init; }
    public bool? Drained { get; init; }
    public MemoryProbeResult? Memory { get; init; }
    public required IReadOnlyDictionary<string, long> Errors { get; init; }
    /// <summary>Acquire-latency histogram (buckets shared by every pool of the report).</summary>
    public required IReadOnlyList<HistogramBucket> AcquireHistogram { get; init; }
}

/// <summary>Covet's figure divided by the provider pool's.</summary>
public sealed record Ratio(string Metric, double? Covet, double? Provider, double? CovetOverProvider, bool HigherIsBetter);

/// <summary>One untimed warm-up round (see <see cref="WarmUp"/>).</summary>
/// <param name="Change">Relative change of throughput from this pool's previous warm-up round (null for its first).</param>
/// <param name="Errors">Operations that failed or timed out (a warm-up does not fail the run).</param>
public sealed record WarmUpRound(PoolKind Pool, string Label, int Round, double OpsPerSecond, double Seconds, double? Change, long Errors);

/// <summary>The untimed warm-up: its rounds in the order they ran, and which pools had not settled when it ended.</summary>
public sealed record WarmUpSummary(IReadOnlyList<WarmUpRound> Rounds, double Seconds, double BudgetSeconds, double Tolerance, IReadOnlyList<string> NotSettled)
{
    /// <summary>One line for the console: each pool's warm-up throughputs and whether they settled.</summary>
    public string Describe()
    {
        if (Rounds.Count == 0)
            return "warm-up: none";
        var pools = Rounds.GroupBy(r => r.Label).Select(g =>
            $"{g.Key} {g.Count()} rounds ({string.Join(" → ", g.Select(r => Format.Rate(r.OpsPerSecond)))} ops/s)");
        var verdict = NotSettled.Count == 0
            ? $"each settled within {Tolerance * 100:0} % between consecutive rounds"
            : $"NOT settled within {Tolerance * 100:0} % in the {BudgetSeconds:0.#} s budget: {string.Join(", ", NotSettled)} (the first timed rounds may still pay for JIT warm-up)";
        return $"warm-up in {Seconds:0.0} s: {string.Join("; ", pools)}; {verdict}";
    }
}
