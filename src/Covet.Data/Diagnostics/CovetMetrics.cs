using System.Diagnostics;
using System.Diagnostics.Metrics;
using Covet.Data.Pooling;

namespace Covet.Data.Diagnostics;

/// <summary>
/// Covet's <see cref="Meter"/> (<c>Covet.Data</c>) with the OpenTelemetry semantic conventions for database client
/// connection pools (<c>db.client.connection.*</c>, every measurement tagged with <c>db.client.connection.pool.name</c>),
/// plus Covet's own instruments under <c>covet.pool.*</c>.
/// </summary>
/// <remarks>
/// Counts are observable instruments read from the live pools when a listener collects, so they cost the checkout path
/// nothing. The three histograms are recorded on the path, but only while a listener has enabled them.
/// </remarks>
public static class CovetMetrics
{
    /// <summary>The meter and activity source name: <c>Covet.Data</c>.</summary>
    public const string Name = "Covet.Data";

    /// <summary>Attribute carrying the pool's name.</summary>
    public const string PoolNameTag = "db.client.connection.pool.name";

    /// <summary>Attribute carrying a connection's state, <c>idle</c> or <c>used</c>.</summary>
    public const string StateTag = "db.client.connection.state";

    private static readonly Meter Meter = new(Name, typeof(CovetMetrics).Assembly.GetName().Version?.ToString());

    /// <summary>Spans for checkouts that had to wait or open a physical connection (never for the fast path).</summary>
    internal static readonly ActivitySource ActivitySource = new(Name, typeof(CovetMetrics).Assembly.GetName().Version?.ToString());

    internal static readonly Histogram<double> CreateTime = Meter.CreateHistogram<double>(
        "db.client.connection.create_time", "s", "The time it took to create a new connection.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] });

    internal static readonly Histogram<double> WaitTime = Meter.CreateHistogram<double>(
        "db.client.connection.wait_time", "s", "The time it took to obtain an open connection from the pool.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00001, 0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] });

    internal static readonly Histogram<double> UseTime = Meter.CreateHistogram<double>(
        "db.client.connection.use_time", "s", "The time between borrowing a connection and returning it to the pool.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60] });

    static CovetMetrics()
    {
        Meter.CreateObservableUpDownCounter("db.client.connection.count", ObserveCount, "{connection}",
            "The number of connections that are currently in the state described by the state attribute.");
        Meter.CreateObservableUpDownCounter("db.client.connection.idle.max", () => Each(p => p.Options.MaxPoolSize), "{connection}",
            "The maximum number of idle open connections allowed.");
        Meter.CreateObservableUpDownCounter("db.client.connection.idle.min", () => Each(p => p.Options.MinPoolSize), "{connection}",
            "The minimum number of idle open connections allowed.");
        Meter.CreateObservableUpDownCounter("db.client.connection.max", () => Each(p => p.Options.MaxPoolSize), "{connection}",
            "The maximum number of open connections allowed.");
        Meter.CreateObservableUpDownCounter("db.client.connection.pending_requests", () => Each(p => p.GetStatistics().Waiting), "{request}",
            "The number of current pending requests for an open connection.");
        Meter.CreateObservableCounter("db.client.connection.timeouts", () => EachLong(p => Interlocked.Read(ref p.Counters.AcquireTimeouts)), "{timeout}",
            "The number of connection timeouts that have occurred trying to obtain a connection from the pool.");

        Meter.CreateObservableCounter("covet.pool.leaks.detected", () => EachLong(p => Interlocked.Read(ref p.Counters.LeaksDetected)), "{leak}",
            "Checkouts held past the leak-detection threshold, and connections garbage-collected while open.");
        Meter.CreateObservableCounter("covet.pool.leaks.reclaimed", () => EachLong(p => Interlocked.Read(ref p.Counters.LeaksReclaimed)), "{connection}",
            "Leaked connections taken back after MaxCheckoutDuration.");
        Meter.CreateObservableUpDownCounter("covet.pool.leaks.suspected", () => Each(p => p.GetStatistics().SuspectedLeaks), "{connection}",
            "Checkouts currently held past the leak-detection threshold.");
        Meter.CreateObservableCounter("covet.pool.preping.failures", () => EachLong(p => Interlocked.Read(ref p.Counters.PrePingFailures)), "{connection}",
            "Connections found dead by the pre-ping and replaced before reaching a caller.");
        Meter.CreateObservableCounter("covet.pool.connection.failures", () => EachLong(p => Interlocked.Read(ref p.Counters.ConnectionFailures)), "{failure}",
            "Attempts to open a physical connection that failed.");
        Meter.CreateObservableGauge("covet.pool.circuit.state", () => Each(p => (int)p.Breaker.State), "{state}",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open.");
        Meter.CreateObservableGauge("covet.pool.state", () => Each(p => (int)p.State), "{state}",
            "Pool state: 0 running, 1 paused (opens wait), 2 draining.");
    }

    /// <summary>Makes sure the meter exists (its instruments are created on first use of this type).</summary>
    internal static void EnsureCreated() { }

    internal static KeyValuePair<string, object?> PoolTag(CovetPool pool) => new(PoolNameTag, pool.Name);

    private static IEnumerable<Measurement<int>> ObserveCount()
    {
        foreach (var pool in CovetPoolRegistry.Snapshot())
        {
            var stats = pool.GetStatistics();
            yield return new Measurement<int>(stats.Idle, PoolTag(pool), new(StateTag, "idle"));
            yield return new Measurement<int>(stats.InUse, PoolTag(pool), new(StateTag, "used"));
        }
    }

    private static IEnumerable<Measurement<int>> Each(Func<CovetPool, int> value) =>
        CovetPoolRegistry.Snapshot().Select(p => new Measurement<int>(value(p), PoolTag(p)));

    private static IEnumerable<Measurement<long>> EachLong(Func<CovetPool, long> value) =>
        CovetPoolRegistry.Snapshot().Select(p => new Measurement<long>(value(p), PoolTag(p)));
}
