namespace Covet.Data.Diagnostics;

/// <summary>
/// The pool's running totals. Each field is written with <see cref="Interlocked"/> by whichever path observes the event,
/// so counting never takes the pool lock.
/// </summary>
internal sealed class PoolCounters
{
    public long ConnectionsCreated;
    public long ConnectionsDestroyed;
    public long ConnectionFailures;
    public long PrePingFailures;
    public long HealthCheckFailures;
    public long ResetFailures;
    public long AcquireTimeouts;
    public long LeaksDetected;
    public long LeaksReclaimed;
    public long ForgottenConnections;
    public long CircuitRejections;
}
