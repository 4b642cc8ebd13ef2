using Microsoft.Extensions.Logging;

namespace Covet.Data.Diagnostics;

/// <summary>Every log event of Covet, with a stable <see cref="EventId"/>. Messages carry the pool name, never a connection string.</summary>
internal static partial class CovetLog
{
    [LoggerMessage(1001, LogLevel.Information, "Pool {PoolName} created (min {MinPoolSize}, max {MaxPoolSize}, provider {Provider})")]
    public static partial void PoolCreated(ILogger logger, string poolName, int minPoolSize, int maxPoolSize, string provider);

    [LoggerMessage(1002, LogLevel.Information, "Pool {PoolName} cleared: {Closed} idle connections closed, {InUse} more close when returned")]
    public static partial void PoolCleared(ILogger logger, string poolName, int closed, int inUse);

    [LoggerMessage(1003, LogLevel.Information, "Pool {PoolName} disposed: {Closed} idle connections closed, {InUse} more close when returned")]
    public static partial void PoolDisposed(ILogger logger, string poolName, int closed, int inUse);

    [LoggerMessage(2001, LogLevel.Debug, "Pool {PoolName} opened physical connection #{ConnectionId} in {ElapsedMs} ms")]
    public static partial void ConnectionCreated(ILogger logger, string poolName, int connectionId, double elapsedMs);

    [LoggerMessage(2002, LogLevel.Warning, "Pool {PoolName} failed to open a physical connection")]
    public static partial void ConnectionFailed(ILogger logger, string poolName, Exception exception);

    [LoggerMessage(2003, LogLevel.Debug, "Pool {PoolName} closed physical connection #{ConnectionId}: {Reason}")]
    public static partial void ConnectionDestroyed(ILogger logger, string poolName, int connectionId, string reason);

    [LoggerMessage(3001, LogLevel.Information, "Pool {PoolName}: pre-ping found connection #{ConnectionId} dead; replacing it")]
    public static partial void PrePingFailed(ILogger logger, string poolName, int connectionId);

    [LoggerMessage(3002, LogLevel.Information, "Pool {PoolName}: health check found idle connection #{ConnectionId} dead; removed it")]
    public static partial void HealthCheckFailed(ILogger logger, string poolName, int connectionId);

    [LoggerMessage(3003, LogLevel.Warning, "Pool {PoolName}: session reset of connection #{ConnectionId} failed; closing it instead of re-pooling")]
    public static partial void ResetFailed(ILogger logger, string poolName, int connectionId, Exception exception);

    [LoggerMessage(3004, LogLevel.Information, "Pool {PoolName}: connection #{ConnectionId} was closed by the server while idle (socket check); replacing it")]
    public static partial void SocketCheckFoundClosed(ILogger logger, string poolName, int connectionId);

    [LoggerMessage(3005, LogLevel.Warning, "Pool {PoolName}: this {Provider} driver version does not expose what the socket check needs; connections closed by the server while idle are found by the pre-ping only (beyond the alive window)")]
    public static partial void SocketCheckUnavailable(ILogger logger, string poolName, string provider);

    [LoggerMessage(4001, LogLevel.Warning, "Pool {PoolName}: connection #{ConnectionId} held for {HeldSeconds:F1} s (leak threshold {ThresholdSeconds:F1} s) by thread {ThreadId} {ThreadName}; it was opened at:\n{StackTrace}")]
    public static partial void LeakSuspected(ILogger logger, string poolName, int connectionId, double heldSeconds, double thresholdSeconds, int threadId, string? threadName, string stackTrace);

    [LoggerMessage(4002, LogLevel.Information, "Pool {PoolName}: connection #{ConnectionId}, earlier reported as a leak, was returned after {HeldSeconds:F1} s")]
    public static partial void LeakReturned(ILogger logger, string poolName, int connectionId, double heldSeconds);

    [LoggerMessage(4003, LogLevel.Warning, "Pool {PoolName}: reclaimed connection #{ConnectionId} held for {HeldSeconds:F1} s (MaxCheckoutDuration {MaxSeconds:F1} s); it was opened at:\n{StackTrace}")]
    public static partial void LeakReclaimed(ILogger logger, string poolName, int connectionId, double heldSeconds, double maxSeconds, string stackTrace);

    [LoggerMessage(4004, LogLevel.Warning, "Pool {PoolName}: a CovetDbConnection was garbage-collected while open (never closed or disposed); recovered physical connection #{ConnectionId} held for {HeldSeconds:F1} s; it was opened at:\n{StackTrace}")]
    public static partial void ForgottenConnection(ILogger logger, string poolName, int connectionId, double heldSeconds, string stackTrace);

    [LoggerMessage(5001, LogLevel.Warning, "Pool {PoolName} exhausted: acquire timed out after {TimeoutSeconds:F1} s (total {Total}, idle {Idle}, in use {InUse}, waiting {Waiting}, max {MaxPoolSize}). Longest-held checkouts:\n{Holders}")]
    public static partial void PoolExhausted(ILogger logger, string poolName, double timeoutSeconds, int total, int idle, int inUse, int waiting, int maxPoolSize, string holders);

    [LoggerMessage(6001, LogLevel.Error, "Pool {PoolName}: circuit opened after {Failures} consecutive connection failures; failing fast until {RetryAt:O}")]
    public static partial void CircuitOpened(ILogger logger, string poolName, int failures, DateTimeOffset retryAt, Exception? exception);

    [LoggerMessage(6002, LogLevel.Information, "Pool {PoolName}: circuit half-open, letting one attempt through")]
    public static partial void CircuitHalfOpen(ILogger logger, string poolName);

    [LoggerMessage(6003, LogLevel.Information, "Pool {PoolName}: circuit closed, database reachable again")]
    public static partial void CircuitClosed(ILogger logger, string poolName);

    [LoggerMessage(7001, LogLevel.Information, "Pool {PoolName} paused: new opens wait until it is resumed ({Waiting} already waiting)")]
    public static partial void PoolPaused(ILogger logger, string poolName, int waiting);

    [LoggerMessage(7002, LogLevel.Information, "Pool {PoolName} resumed: {Served} waiting callers served at once")]
    public static partial void PoolResumed(ILogger logger, string poolName, int served);

    [LoggerMessage(7003, LogLevel.Information, "Pool {PoolName} drained: {Closed} connections closed, completed {Completed}, {Stragglers} still borrowed (closed when returned); the pool stays paused until resumed")]
    public static partial void PoolDrained(ILogger logger, string poolName, int closed, bool completed, int stragglers);

    [LoggerMessage(7004, LogLevel.Information, "Pool {PoolName} reconfigured: {Changes}")]
    public static partial void PoolReconfigured(ILogger logger, string poolName, string changes);
}
