namespace Covet.Data;

/// <summary>A snapshot of one pool. Counts are consistent with each other (taken under the pool lock); totals are since the pool was created.</summary>
public sealed record CovetPoolStatistics
{
    /// <summary>The pool's name (never contains a password).</summary>
    public required string PoolName { get; init; }
    /// <summary>
    /// A number that identifies the pool within the process for its whole life (unlike <see cref="PoolName"/>, which two
    /// pools may share). Filled in by every public statistics call; 0 only in statistics built by hand.
    /// </summary>
    public long PoolId { get; init; }
    /// <summary>Physical connections open or being opened.</summary>
    public int Total { get; init; }
    /// <summary>Physical connections idle in the pool, ready to hand out.</summary>
    public int Idle { get; init; }
    /// <summary>Physical connections borrowed (including ones being reset, validated or held by a transaction).</summary>
    public int InUse { get; init; }
    /// <summary>Callers waiting for a connection.</summary>
    public int Waiting { get; init; }
    /// <summary>Configured minimum.</summary>
    public int MinPoolSize { get; init; }
    /// <summary>Configured maximum.</summary>
    public int MaxPoolSize { get; init; }
    /// <summary>The size demand-driven sizing currently keeps warm (at least the minimum).</summary>
    public int WarmTarget { get; init; }
    /// <summary>In use as a percentage of the maximum.</summary>
    public double UtilizationPercent => MaxPoolSize == 0 ? 0 : 100.0 * InUse / MaxPoolSize;
    /// <summary>Checkouts since the pool was created.</summary>
    public long Checkouts { get; init; }
    /// <summary>Time to acquire a connection, 50th percentile.</summary>
    public TimeSpan AcquireP50 { get; init; }
    /// <summary>Time to acquire a connection, 95th percentile.</summary>
    public TimeSpan AcquireP95 { get; init; }
    /// <summary>Time to acquire a connection, 99th percentile.</summary>
    public TimeSpan AcquireP99 { get; init; }
    /// <summary>Longest acquire.</summary>
    public TimeSpan AcquireMax { get; init; }
    /// <summary>Time a borrower held a connection, 50th percentile.</summary>
    public TimeSpan UseP50 { get; init; }
    /// <summary>Time a borrower held a connection, 95th percentile.</summary>
    public TimeSpan UseP95 { get; init; }
    /// <summary>Time a borrower held a connection, 99th percentile.</summary>
    public TimeSpan UseP99 { get; init; }
    /// <summary>Physical connections opened.</summary>
    public long ConnectionsCreated { get; init; }
    /// <summary>Physical connections closed.</summary>
    public long ConnectionsDestroyed { get; init; }
    /// <summary>Attempts to open a physical connection that failed.</summary>
    public long ConnectionFailures { get; init; }
    /// <summary>Connections found dead by the pre-ping and replaced.</summary>
    public long PrePingFailures { get; init; }
    /// <summary>Idle connections found dead by the periodic health check.</summary>
    public long HealthCheckFailures { get; init; }
    /// <summary>Session resets that failed (the connection was destroyed instead of re-pooled).</summary>
    public long ResetFailures { get; init; }
    /// <summary>Acquires that timed out.</summary>
    public long AcquireTimeouts { get; init; }
    /// <summary>Checkouts currently held longer than the leak-detection threshold.</summary>
    public int SuspectedLeaks { get; init; }
    /// <summary>Leaks reported since the pool was created (including forgotten connections).</summary>
    public long LeaksDetected { get; init; }
    /// <summary>Leaked connections taken back after <see cref="CovetPoolOptions.MaxCheckoutDuration"/>.</summary>
    public long LeaksReclaimed { get; init; }
    /// <summary>Logical connections garbage-collected while still open, whose physical connection was recovered.</summary>
    public long ForgottenConnections { get; init; }
    /// <summary>Callers rejected at once because the circuit was open.</summary>
    public long CircuitRejections { get; init; }
    /// <summary>State of the circuit breaker.</summary>
    public CovetCircuitState CircuitState { get; init; }
    /// <summary>Whether the pool serves opens (<see cref="CovetPoolState.Running"/>), holds them back, or is draining (see <see cref="CovetDataSource.PauseAsync"/>).</summary>
    public CovetPoolState State { get; init; }
}

/// <summary>States of a pool: serving opens, paused by hand, or draining (see <see cref="CovetDataSource.DrainAsync"/>).</summary>
public enum CovetPoolState
{
    /// <summary>Opens are served normally (the default).</summary>
    Running,
    /// <summary>New opens wait (each bounded by its acquire timeout); borrowed connections keep working; nothing new is opened in the background.</summary>
    Paused,
    /// <summary>Paused, and every connection is being closed: idle ones at once, borrowed ones as they are returned.</summary>
    Draining,
}

/// <summary>States of the pool's circuit breaker.</summary>
public enum CovetCircuitState
{
    /// <summary>Connections are made normally.</summary>
    Closed,
    /// <summary>The database is failing: acquires that need a new connection fail at once.</summary>
    Open,
    /// <summary>One attempt is let through to test the database.</summary>
    HalfOpen,
}
