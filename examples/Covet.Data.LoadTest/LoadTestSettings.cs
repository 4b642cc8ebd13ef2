namespace Covet.Data.LoadTest;

/// <summary>Which database the load runs against.</summary>
public enum ProviderKind
{
    /// <summary>Microsoft.Data.Sqlite; without a connection string, a temporary database file.</summary>
    Sqlite,
    /// <summary>PostgreSQL through Npgsql.</summary>
    Postgres,
    /// <summary>MySQL or MariaDB through MySqlConnector.</summary>
    MySql,
}

/// <summary>The shape of the load.</summary>
public enum ScenarioKind
{
    /// <summary>N concurrent callers, each repeating open → query → close a fixed number of times.</summary>
    Burst,
    /// <summary>N concurrent workers repeating open → query → close for a fixed time.</summary>
    Sustained,
    /// <summary>A very large number of callers, each doing one open → query → close, released at once on a small pool.</summary>
    Extreme,
}

/// <summary>Everything the command line decided, validated.</summary>
public sealed record LoadTestSettings
{
    public required ProviderKind Provider { get; init; }
    /// <summary>Provider connection string; null for the default temporary SQLite database.</summary>
    public string? ConnectionString { get; init; }
    /// <summary>Extra Covet settings as keywords without the prefix, e.g. <c>LeakDetectionThreshold=0;PrePing=false</c>.</summary>
    public string? CovetOptions { get; init; }
    public required ScenarioKind Scenario { get; init; }
    /// <summary>Concurrent callers (workers).</summary>
    public required int Callers { get; init; }
    /// <summary>Operations per caller (<see cref="ScenarioKind.Burst"/> and <see cref="ScenarioKind.Extreme"/>).</summary>
    public required int Iterations { get; init; }
    /// <summary>How long each run lasts (<see cref="ScenarioKind.Sustained"/>).</summary>
    public TimeSpan? Duration { get; init; }
    public required int MaxPoolSize { get; init; }
    public required int MinPoolSize { get; init; }
    public required TimeSpan AcquireTimeout { get; init; }
    /// <summary>Also run the provider's own pool, interleaved with Covet's.</summary>
    public required bool Compare { get; init; }
    /// <summary>Longest untimed warm-up before the timed rounds (zero: none); see <see cref="Scenarios.WarmUp"/>.</summary>
    public required TimeSpan WarmUpBudget { get; init; }
    /// <summary>Timed runs per pool.</summary>
    public required int Rounds { get; init; }
    /// <summary>The statement each operation runs (through Dapper).</summary>
    public required string Query { get; init; }
    /// <summary>Extra time each caller holds its connection after the query (simulated work); zero: it hops through the thread pool once.</summary>
    public required TimeSpan Hold { get; init; }
    /// <summary>Callers left waiting on an exhausted pool by the memory probe.</summary>
    public required int ProbeWaiters { get; init; }
    public required TimeSpan SampleInterval { get; init; }
    public string? JsonPath { get; init; }
    public string? HtmlPath { get; init; }
    /// <summary>Plain progress lines even on a terminal.</summary>
    public required bool Plain { get; init; }
    /// <summary>Acquire timeouts do not make the exit code non-zero.</summary>
    public required bool AllowTimeouts { get; init; }

    /// <summary>Total operations of one run when it is count-bound, else null.</summary>
    public long? ExpectedOperations => Scenario == ScenarioKind.Sustained ? null : (long)Callers * Iterations;

    /// <summary>One line describing the load, for the console and the reports.</summary>
    public string Describe() => Scenario switch
    {
        ScenarioKind.Burst => $"burst: {Callers:N0} concurrent callers × {Iterations:N0} × (open → {Query} → close)",
        ScenarioKind.Sustained => $"sustained: {Callers:N0} workers repeating (open → {Query} → close) for {Duration!.Value.TotalSeconds:0.#} s",
        ScenarioKind.Extreme => $"extreme: {Callers:N0} callers released at once, each doing open → {Query} → close once",
        _ => Scenario.ToString(),
    } + (Hold > TimeSpan.Zero ? $", holding each connection {Hold.TotalMilliseconds:0.#} ms more" : "")
      + $"; pool max {MaxPoolSize}, min {MinPoolSize}, acquire timeout {AcquireTimeout.TotalSeconds:0.#} s"
      + (string.IsNullOrWhiteSpace(CovetOptions) ? "" : $"; Covet options {CovetOptions}");
}
