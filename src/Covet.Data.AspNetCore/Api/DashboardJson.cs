using System.Text.Json.Serialization;
using Covet.Data.AspNetCore.History;
using Covet.Data.AspNetCore.Pools;

namespace Covet.Data.AspNetCore.Api;

// The JSON shapes of the API (camelCase on the wire). Times are milliseconds, so the page needs no parsing of TimeSpans.
// Nothing here carries a connection string: a pool's name never contains a password (the core guarantees it), holders
// carry method frames only, and no command text or parameter value is ever recorded by the pool.

/// <summary>GET api/pools.</summary>
internal sealed record PoolListJson(long GeneratedAtUnixMs, bool ActionsEnabled, int SampleIntervalMs, int HistoryLength, IReadOnlyList<PoolJson> Pools);

/// <summary>One pool; <see cref="Holders"/> only in GET api/pools/{id}.</summary>
internal sealed record PoolJson(
    long Id, string Name, string State, int PoolsSharingName,
    int Total, int InUse, int Idle, int Waiting, int MinPoolSize, int MaxPoolSize, int WarmTarget, double UtilizationPercent,
    long Checkouts, double AcquireP50Ms, double AcquireP95Ms, double AcquireP99Ms, double AcquireMaxMs,
    double UseP50Ms, double UseP95Ms, double UseP99Ms,
    long ConnectionsCreated, long ConnectionsDestroyed, long ConnectionFailures, long PrePingFailures, long HealthCheckFailures,
    long ResetFailures, long AcquireTimeouts, int SuspectedLeaks, long LeaksDetected, long LeaksReclaimed, long ForgottenConnections,
    string BreakerState, long CircuitRejections, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<HolderJson>? Holders)
{
    public static PoolJson From(DashboardPool pool, IReadOnlyList<HolderJson>? holders)
    {
        var s = pool.Statistics;
        return new PoolJson(s.PoolId, s.PoolName, pool.State, pool.PoolsSharingName,
            s.Total, s.InUse, s.Idle, s.Waiting, s.MinPoolSize, s.MaxPoolSize, s.WarmTarget, Math.Round(s.UtilizationPercent, 1),
            s.Checkouts, Ms(s.AcquireP50), Ms(s.AcquireP95), Ms(s.AcquireP99), Ms(s.AcquireMax),
            Ms(s.UseP50), Ms(s.UseP95), Ms(s.UseP99),
            s.ConnectionsCreated, s.ConnectionsDestroyed, s.ConnectionFailures, s.PrePingFailures, s.HealthCheckFailures,
            s.ResetFailures, s.AcquireTimeouts, s.SuspectedLeaks, s.LeaksDetected, s.LeaksReclaimed, s.ForgottenConnections,
            s.CircuitState.ToString(), s.CircuitRejections, holders);
    }

    internal static double Ms(TimeSpan t) => Math.Round(t.TotalMilliseconds, 3);
}

/// <summary>One checkout holding a connection.</summary>
internal sealed record HolderJson(double HeldMs, int ThreadId, string? ThreadName, string? StackTrace)
{
    public static HolderJson From(CovetCheckoutInfo h) => new(PoolJson.Ms(h.Held), h.ThreadId, h.ThreadName, h.StackTrace);
}

/// <summary>GET api/pools/{id}/history: samples oldest first, as parallel arrays (600 samples stay a few kilobytes).</summary>
internal sealed record HistoryJson(
    long Id, int SampleIntervalMs, int Capacity, long[] T, int[] InUse, int[] Idle, int[] Waiting, int[] Total, int[] Max,
    double[] AcquireP50Ms, double[] AcquireP99Ms)
{
    public static HistoryJson From(long id, int intervalMs, int capacity, PoolSample[] s) => new(id, intervalMs, capacity,
        [.. s.Select(x => x.UnixMs)], [.. s.Select(x => x.InUse)], [.. s.Select(x => x.Idle)], [.. s.Select(x => x.Waiting)],
        [.. s.Select(x => x.Total)], [.. s.Select(x => x.Max)], [.. s.Select(x => x.AcquireP50Ms)], [.. s.Select(x => x.AcquireP99Ms)]);
}

/// <summary>The answer of an action.</summary>
internal sealed record ActionJson(string Action, long Id, string Message, int? PoolsAffected = null, int? Closed = null, IReadOnlyList<HolderJson>? Stragglers = null);

/// <summary>The body of POST api/pools/{id}/resize.</summary>
internal sealed record ResizeJson(int? MinPoolSize, int MaxPoolSize);
