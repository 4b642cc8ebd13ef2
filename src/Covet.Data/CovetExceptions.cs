using System.Data.Common;

namespace Covet.Data;

/// <summary>Base of the errors Covet itself raises. Provider errors are never wrapped: they propagate as the provider threw them.</summary>
public class CovetException : DbException
{
    /// <summary>Creates the exception.</summary>
    public CovetException(string message, Exception? inner = null) : base(message, inner) { }

    /// <summary>The name of the pool, never containing a password.</summary>
    public string? PoolName { get; init; }
}

/// <summary>
/// No connection became available within <see cref="CovetPoolOptions.AcquireTimeout"/>. The message gives the pool's counts and
/// the longest-held checkouts with the stack traces of the code that opened them (when leak detection is on).
/// </summary>
public sealed class CovetPoolExhaustedException : CovetException
{
    /// <summary>Creates the exception.</summary>
    public CovetPoolExhaustedException(string message, Exception? inner = null) : base(message, inner) { }

    /// <inheritdoc />
    public override bool IsTransient => true;

    /// <summary>The longest-held checkouts when the acquire timed out, longest first.</summary>
    public IReadOnlyList<CovetCheckoutInfo> Holders { get; init; } = [];
}

/// <summary>The connection was taken back by the pool (held past <see cref="CovetPoolOptions.MaxCheckoutDuration"/>, or the pool was disposed).</summary>
public sealed class CovetConnectionReclaimedException : CovetException
{
    /// <summary>Creates the exception.</summary>
    public CovetConnectionReclaimedException(string message) : base(message) { }
}

/// <summary>The pool's circuit breaker is open: the database failed repeatedly, so Covet fails fast instead of waiting out a connect timeout.</summary>
public sealed class CovetCircuitOpenException : CovetException
{
    /// <summary>Creates the exception.</summary>
    public CovetCircuitOpenException(string message, Exception? lastError) : base(message, lastError) { }

    /// <inheritdoc />
    public override bool IsTransient => true;

    /// <summary>When the circuit opened.</summary>
    public DateTimeOffset OpenedAt { get; init; }

    /// <summary>How long until the next attempt is let through.</summary>
    public TimeSpan RetryAfter { get; init; }
}

/// <summary>A checkout that is (or was) holding a connection: when, where and on which thread it was taken.</summary>
/// <param name="Held">How long the connection has been held.</param>
/// <param name="ThreadId">Managed thread id of the code that opened it.</param>
/// <param name="ThreadName">Name of that thread, when it had one.</param>
/// <param name="StackTrace">The user's frames that opened it; null when leak detection is off.</param>
public sealed record CovetCheckoutInfo(TimeSpan Held, int ThreadId, string? ThreadName, string? StackTrace);
