using Microsoft.Extensions.Logging;

namespace Covet.Data;

/// <summary>
/// Settings of one Covet pool. Every setting also exists as a connection-string keyword
/// (see <see cref="CovetConnectionStringKeywords"/>), so apps configured only by connection string can tune the pool.
/// </summary>
/// <remarks>
/// Time settings use <see cref="TimeSpan.Zero"/> to turn a feature off where the documentation says so.
/// Call <see cref="Validate"/> (the pool does it on creation) to get a <see cref="CovetConfigurationException"/>
/// naming the setting that is wrong.
/// </remarks>
public sealed class CovetPoolOptions
{
    /// <summary>Physical connections kept open and warm, created in the background. Default 0.</summary>
    public int MinPoolSize { get; set; }

    /// <summary>Upper bound of physical connections, in use and idle together. Default 100.</summary>
    public int MaxPoolSize { get; set; } = 100;

    /// <summary>How long <c>Open</c> waits for a connection before it throws <see cref="CovetPoolExhaustedException"/>. Default 30 s.</summary>
    public TimeSpan AcquireTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>An idle connection above <see cref="MinPoolSize"/> is closed after this long unused. Default 10 min; <see cref="TimeSpan.Zero"/> turns it off.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A physical connection is retired after this long (minus a random spread of up to 2.5 % so connections do not all expire together),
    /// when it is next idle. Default 30 min; <see cref="TimeSpan.Zero"/> turns it off.
    /// </summary>
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Command timeout given to commands created through Covet unless the command, or the provider connection string, sets
    /// one. Default unset (null): commands keep the provider's own timeout (its default, or its connection string's), as
    /// without Covet. Must be positive when set.
    /// </summary>
    public TimeSpan? DefaultCommandTimeout { get; set; }

    /// <summary>Test a connection before handing it out (pre-ping). Default true.</summary>
    public bool PrePing { get; set; } = true;

    /// <summary>A connection used successfully within this window skips the pre-ping, so hot connections pay nothing. Default 500 ms.</summary>
    public TimeSpan AliveBypassWindow { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Timeout of one liveness test (pre-ping and health check). Default 5 s.</summary>
    public TimeSpan ValidationTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// SQL used as liveness test when the provider has no protocol-level ping. Default: the provider dialect's own
    /// (<c>SELECT 1</c> for most databases).
    /// </summary>
    public string? HealthQuery { get; set; }

    /// <summary>How often idle connections are tested in the background; dead ones are removed and the pool refilled to the minimum. Default 60 s; <see cref="TimeSpan.Zero"/> turns it off.</summary>
    public TimeSpan HealthCheckInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Reset session state (variables, temp tables, LISTEN, open transaction) before the next borrower gets a connection.
    /// Default true. Turn it off behind a transaction-mode pgbouncer or ProxySQL, which reset sessions themselves.
    /// </summary>
    public bool ResetSessionOnReturn { get; set; } = true;

    /// <summary>SQL that resets a session, for providers whose dialect has no reset of its own (the generic path). Default none.</summary>
    public string? ResetQuery { get; set; }

    /// <summary>
    /// A connection held longer than this is reported as a suspected leak, with the stack trace of the code that opened it.
    /// Default 60 s; <see cref="TimeSpan.Zero"/> turns leak detection (and stack-trace capture) off.
    /// </summary>
    public TimeSpan LeakDetectionThreshold { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Which checkouts capture the stack trace of the code that opened the connection (only while leak detection is on).
    /// A capture walks the whole stack (several µs and kilobytes on a deep stack, more than the rest of a checkout), so the
    /// default, <see cref="CovetLeakStackTraces.Adaptive"/>, captures at most one checkout per 100 ms until the pool suspects a
    /// leak and every checkout from then on (for 15 minutes): a quiet pool has nearly every checkout traced, a busy one pays
    /// for ten stack walks a second. <see cref="CovetLeakStackTraces.Always"/> captures every checkout.
    /// </summary>
    public CovetLeakStackTraces LeakStackTraces { get; set; } = CovetLeakStackTraces.Adaptive;

    /// <summary>
    /// A connection held longer than this is reclaimed: its physical connection is closed and its slot freed; further use of the
    /// leaked <see cref="CovetDbConnection"/> throws <see cref="CovetConnectionReclaimedException"/>.
    /// Default 300 s; <see cref="TimeSpan.Zero"/> turns reclaim off.
    /// </summary>
    public TimeSpan MaxCheckoutDuration { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>How often the background maintenance (eviction, leak watch, minimum refill) runs. Default 1 s.</summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Number of consecutive connection failures that open the circuit breaker. Default 5; 0 turns the breaker off.</summary>
    public int CircuitBreakerFailureThreshold { get; set; } = 5;

    /// <summary>
    /// How long the breaker stays open before it lets one attempt through (a background probe may close it earlier).
    /// Default 10 s: long enough that a down database is not hammered by every caller, short enough that an app
    /// recovers within seconds once it is back.
    /// </summary>
    public TimeSpan CircuitBreakerBreakDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Demand-driven sizing between the minimum and the maximum (see <see cref="ScaleUpUtilization"/>). Default true.</summary>
    public bool AutoScale { get; set; } = true;

    /// <summary>Utilization (in use / total) at or above which the warm set grows by <see cref="ScaleStep"/>, in the background. Default 0.8.</summary>
    public double ScaleUpUtilization { get; set; } = 0.8;

    /// <summary>Utilization below which, held for <see cref="ScaleInterval"/>, idle connections are let go by <see cref="ScaleStep"/>. Default 0.5.</summary>
    public double ScaleDownUtilization { get; set; } = 0.5;

    /// <summary>Fraction of the current size added or removed per resize (at least one connection). Default 0.2.</summary>
    public double ScaleStep { get; set; } = 0.2;

    /// <summary>Minimum time between two resizes, and how long low utilization must last before shrinking. Default 5 s.</summary>
    public TimeSpan ScaleInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A name for the pool in logs, metrics and errors. Default: derived from the data source and database (never the password).</summary>
    public string? PoolName { get; set; }

    /// <summary>Logger factory for the pool's events. Default: no logging. Not settable from a connection string.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Clock and timers of the pool; tests pass a fake one. Default <see cref="TimeProvider.System"/>. Not settable from a connection string.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Called each time a physical connection is made; returns the password (or token) to use, so rotated credentials work
    /// without a restart. Existing connections keep running until they expire. Default none.
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? PasswordProvider { get; set; }

    /// <summary>A copy whose later changes do not affect this instance.</summary>
    public CovetPoolOptions Clone() => (CovetPoolOptions)MemberwiseClone();

    /// <summary>Checks every setting.</summary>
    /// <exception cref="CovetConfigurationException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        if (MaxPoolSize < 1)
            throw new CovetConfigurationException(nameof(MaxPoolSize), $"MaxPoolSize must be at least 1 (was {MaxPoolSize}).");
        if (MinPoolSize < 0)
            throw new CovetConfigurationException(nameof(MinPoolSize), $"MinPoolSize must not be negative (was {MinPoolSize}).");
        if (MinPoolSize > MaxPoolSize)
            throw new CovetConfigurationException(nameof(MinPoolSize), $"MinPoolSize ({MinPoolSize}) must not exceed MaxPoolSize ({MaxPoolSize}).");
        Positive(AcquireTimeout, nameof(AcquireTimeout));
        Positive(ValidationTimeout, nameof(ValidationTimeout));
        if (DefaultCommandTimeout is { } commandTimeout)
            Positive(commandTimeout, nameof(DefaultCommandTimeout));
        Positive(MaintenanceInterval, nameof(MaintenanceInterval));
        NotNegative(IdleTimeout, nameof(IdleTimeout));
        NotNegative(MaxLifetime, nameof(MaxLifetime));
        NotNegative(AliveBypassWindow, nameof(AliveBypassWindow));
        NotNegative(HealthCheckInterval, nameof(HealthCheckInterval));
        NotNegative(LeakDetectionThreshold, nameof(LeakDetectionThreshold));
        NotNegative(MaxCheckoutDuration, nameof(MaxCheckoutDuration));
        NotNegative(CircuitBreakerBreakDuration, nameof(CircuitBreakerBreakDuration));
        Fraction(ScaleUpUtilization, nameof(ScaleUpUtilization));
        Fraction(ScaleDownUtilization, nameof(ScaleDownUtilization));
        Fraction(ScaleStep, nameof(ScaleStep));
        if (ScaleDownUtilization >= ScaleUpUtilization)
            throw new CovetConfigurationException(nameof(ScaleDownUtilization), $"ScaleDownUtilization ({ScaleDownUtilization}) must be below ScaleUpUtilization ({ScaleUpUtilization}).");
        NotNegative(ScaleInterval, nameof(ScaleInterval));
        if (CircuitBreakerFailureThreshold < 0)
            throw new CovetConfigurationException(nameof(CircuitBreakerFailureThreshold), $"CircuitBreakerFailureThreshold must not be negative (was {CircuitBreakerFailureThreshold}).");
        if (TimeProvider is null)
            throw new CovetConfigurationException(nameof(TimeProvider), "TimeProvider must not be null.");
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
            throw new CovetConfigurationException(name, $"{name} must be greater than zero (was {value}).");
    }

    private static void Fraction(double value, string name)
    {
        if (!(value > 0 && value <= 1))
            throw new CovetConfigurationException(name, $"{name} must be greater than 0 and at most 1 (was {value}).");
    }

    private static void NotNegative(TimeSpan value, string name)
    {
        if (value < TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
            throw new CovetConfigurationException(name, $"{name} must not be negative (was {value}).");
    }
}

/// <summary>Which checkouts capture a stack trace for leak reports; see <see cref="CovetPoolOptions.LeakStackTraces"/>.</summary>
public enum CovetLeakStackTraces
{
    /// <summary>At most one checkout per 100 ms, and every checkout once the pool has suspected a leak (in the last 15 minutes).</summary>
    Adaptive,
    /// <summary>Every checkout: the first leak is reported with its trace, at a cost of a stack walk per checkout.</summary>
    Always,
    /// <summary>No checkout: leaks are reported with time and thread only.</summary>
    Never,
}
