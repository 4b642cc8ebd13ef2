using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Covet.Data;

/// <summary>
/// Reports a pool's health: Unhealthy while the circuit is open or no connection can be opened; Degraded while the pool
/// is paused or draining (by hand: it serves no opens, so it is not probed), or when utilization is high, callers are
/// waiting, or leaks are suspected; Healthy otherwise. The statistics are the data.
/// </summary>
public sealed class CovetPoolHealthCheck(CovetDataSource dataSource, CovetHealthCheckOptions? options = null) : IHealthCheck
{
    private readonly CovetHealthCheckOptions _options = options ?? new CovetHealthCheckOptions();

    /// <inheritdoc />
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var stats = dataSource.GetStatistics();
        if (stats.CircuitState == CovetCircuitState.Open)
            return new HealthCheckResult(context.Registration.FailureStatus, $"Pool '{stats.PoolName}': circuit open, database unreachable.", data: Data(stats));

        if (stats.State != CovetPoolState.Running)
        {
            // Paused by hand: an open would only wait out the probe timeout, and the database is not what is wrong.
            var reason = stats.State == CovetPoolState.Paused ? "paused" : "draining";
            return HealthCheckResult.Degraded($"Pool '{stats.PoolName}': {reason} ({stats.Waiting} callers waiting, {stats.InUse} connections still borrowed).", data: Data(stats));
        }

        if (stats.Idle == 0 && stats.Total < stats.MaxPoolSize)
        {
            // No warm connection proves the database is reachable: open one (it goes back to the pool afterwards).
            try
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                cts.CancelAfter(_options.ProbeTimeout);
                await using var connection = dataSource.CreateConnection();
                await connection.OpenAsync(cts.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                return new HealthCheckResult(context.Registration.FailureStatus, $"Pool '{stats.PoolName}': cannot open a connection.", e, Data(dataSource.GetStatistics()));
            }
            stats = dataSource.GetStatistics();
        }

        var reasons = new List<string>();
        if (stats.UtilizationPercent >= _options.DegradedUtilizationPercent)
            reasons.Add($"utilization {stats.UtilizationPercent:F0} %");
        if (stats.Waiting > 0)
            reasons.Add($"{stats.Waiting} callers waiting");
        if (stats.SuspectedLeaks > 0)
            reasons.Add($"{stats.SuspectedLeaks} suspected leaks");
        return reasons.Count > 0
            ? HealthCheckResult.Degraded($"Pool '{stats.PoolName}': {string.Join(", ", reasons)}.", data: Data(stats))
            : HealthCheckResult.Healthy($"Pool '{stats.PoolName}': {stats.InUse}/{stats.MaxPoolSize} in use.", Data(stats));
    }

    private static IReadOnlyDictionary<string, object> Data(CovetPoolStatistics stats) => new Dictionary<string, object>
    {
        ["pool"] = stats.PoolName,
        ["total"] = stats.Total,
        ["idle"] = stats.Idle,
        ["inUse"] = stats.InUse,
        ["waiting"] = stats.Waiting,
        ["max"] = stats.MaxPoolSize,
        ["utilizationPercent"] = stats.UtilizationPercent,
        ["acquireP99Ms"] = stats.AcquireP99.TotalMilliseconds,
        ["suspectedLeaks"] = stats.SuspectedLeaks,
        ["leaksReclaimed"] = stats.LeaksReclaimed,
        ["connectionFailures"] = stats.ConnectionFailures,
        ["circuitState"] = stats.CircuitState.ToString(),
        ["state"] = stats.State.ToString(),
    };
}

/// <summary>Thresholds of <see cref="CovetPoolHealthCheck"/>.</summary>
public sealed class CovetHealthCheckOptions
{
    /// <summary>Utilization at or above which the pool is Degraded. Default 90 %.</summary>
    public double DegradedUtilizationPercent { get; set; } = 90;

    /// <summary>How long the check may take to open a connection when none is idle. Default 5 s.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Adds Covet's health check to ASP.NET Core / Generic Host health checks.</summary>
public static class CovetHealthChecksBuilderExtensions
{
    /// <summary>Adds a <see cref="CovetPoolHealthCheck"/> for the registered <see cref="CovetDataSource"/> (keyed when <paramref name="serviceKey"/> is given).</summary>
    public static IHealthChecksBuilder AddCovetPool(this IHealthChecksBuilder builder, string name = "covet", object? serviceKey = null,
        CovetHealthCheckOptions? options = null, HealthStatus? failureStatus = null, IEnumerable<string>? tags = null) =>
        builder.Add(new HealthCheckRegistration(name,
            sp => new CovetPoolHealthCheck(serviceKey is null ? sp.GetRequiredService<CovetDataSource>() : sp.GetRequiredKeyedService<CovetDataSource>(serviceKey), options),
            failureStatus, tags));
}
