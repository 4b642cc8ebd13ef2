using System.Data.Common;
using Covet.Data.Diagnostics;
using Covet.Data.Providers;
using Microsoft.Extensions.Logging;

namespace Covet.Data.Health;

/// <summary>
/// The checkout-time socket check of one pool: which idle connections to look at, and what the look means. A
/// connection the server closed (killed, restarted, timed out) is retired before anyone sees it, with one system call
/// and no round trip; one whose socket holds unread bytes is verified with a ping.
/// </summary>
/// <remarks>
/// <para><b>Which.</b> Only connections idle longer than <see cref="Threshold"/>. The look is a system call (about 1 µs
/// on the test VM, more than the rest of a hot checkout), while the comparison costs nothing: the checkout has read the
/// clock already, and <c>LastUsedAt</c> is set on return. A connection handed straight back within the threshold was in
/// use a moment ago; the threshold is far below the time any server takes to kill a session and tell the client, and
/// far below the gap between a return and a kill in issue 13's acceptance.</para>
/// <para><b>What it cannot see.</b> A peer that vanished without a word (power loss, a black-holed network) leaves the
/// socket quiet: the pre-ping beyond the alive window still covers that. And the moment between a server deciding to end
/// a session and its message arriving (PostgreSQL: <c>pg_terminate_backend</c> returns before the backend has acted,
/// median ~50 µs here, tail tens of ms on a loaded machine): a checkout inside it sees a quiet socket. On PostgreSQL the
/// command path can close that gap by proof (<see cref="ProviderDialect.FailedBeforeUserCommand"/>).</para>
/// <para>Stateless after construction and safe to call from any thread: the connection itself is owned by the caller.</para>
/// </remarks>
internal sealed class SocketCheck
{
    /// <summary>Idle time above which a checkout looks at the socket (20 µs).</summary>
    public static readonly TimeSpan Threshold = TimeSpan.FromMicroseconds(20);

    private readonly ProviderDialect _dialect;
    private readonly long _thresholdTicks;

    private SocketCheck(ProviderDialect dialect, long thresholdTicks)
    {
        _dialect = dialect;
        _thresholdTicks = thresholdTicks;
    }

    /// <summary>
    /// The check for a pool over <paramref name="dialect"/>, or null when there is nothing to look at: no socket (SQLite,
    /// an unknown provider), or a known network driver whose internals this version cannot bind, which is logged once,
    /// here, as the pool is built (then dead connections are found by the pre-ping only, as before).
    /// </summary>
    public static SocketCheck? Create(ProviderDialect dialect, Pooling.PoolClock clock, ILogger logger, string poolName)
    {
        if (!dialect.CanProbeSocket)
        {
            if (dialect.Name is "postgresql" or "mysql")
                CovetLog.SocketCheckUnavailable(logger, poolName, dialect.Name);
            return null;
        }
        // Integer arithmetic: the threshold in the checkout clock's own units, exactly (no floating-point rounding at the
        // boundary). On the coarse real clock (milliseconds, advancing once per kernel tick) that is 0: a connection is
        // looked at once its idle time spans a tick boundary, and one returned and taken again within the same tick
        // (1-4 ms) is not: see the remarks.
        return new SocketCheck(dialect, (long)((Int128)Threshold.Ticks * clock.Frequency / TimeSpan.TicksPerSecond));
    }

    /// <summary>Whether a connection last used at <paramref name="lastUsedAt"/> should be looked at (timestamps of the pool's clock).</summary>
    public bool IsDue(long lastUsedAt, long now) => now - lastUsedAt > _thresholdTicks;

    /// <summary>Looks at an idle connection the caller owns. Never throws.</summary>
    public SocketVerdict Check(DbConnection physical) => _dialect.ProbeSocket(physical) switch
    {
        SocketState.Closed => SocketVerdict.Retire,
        SocketState.Readable => SocketVerdict.Ping,
        _ => SocketVerdict.AsBefore, // Quiet, or Unknown for this one connection (a named pipe): the usual rules apply
    };
}

/// <summary>What a checkout does with a connection after <see cref="SocketCheck.Check"/>.</summary>
internal enum SocketVerdict
{
    /// <summary>Nothing seen: the usual rules apply (pre-ping beyond the alive window).</summary>
    AsBefore,

    /// <summary>Unread bytes wait (maybe harmless): ping it before use, even inside the alive window.</summary>
    Ping,

    /// <summary>The server closed it: destroy it and take the next one.</summary>
    Retire,
}
