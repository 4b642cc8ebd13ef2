using Covet.Data.Diagnostics;
using Covet.Data.Pooling;

namespace Covet.Data.Health;

/// <summary>
/// Decides whether a connection taken from the idle stack (or handed over by a returner) may go to a borrower as it is,
/// and makes it fit when it may not: retire it if broken, expired or from before a <c>Clear</c>; reset it if it was
/// handed over dirty; if it was idle a while, look at its socket (<see cref="SocketCheck"/>: retire it if the server closed
/// it, ping it if bytes wait); pre-ping it unless it was used within the alive window — and always after a sibling was
/// found dead under a borrower (a server restart or a mass kill makes every older connection suspect).
/// </summary>
/// <remarks>
/// Contract: called by the connection's new owner only (the fast path under the pool lock for <see cref="IsReady"/>,
/// the slow path and bound waiters outside it for <see cref="PrepareAsync"/>), so the connection's fields are its own to
/// write. The suspect epoch is the only shared state: bumped with <see cref="Interlocked"/> by whoever sees a connection
/// die under a borrower.
/// </remarks>
internal sealed class BorrowerValidation(CovetPool pool)
{
    private int _suspectEpoch;       // bumped when a connection dies under a borrower: every sibling verified before then is suspect
    private long _aliveWindow = pool.Clock.Units(pool.Options.AliveBypassWindow);
    private bool _prePing = pool.Options.PrePing;
    private readonly SocketCheck? _socketCheck = SocketCheck.Create(pool.Dialect, pool.Clock, pool.Logger, pool.Name); // null: no socket to look at

    /// <summary>
    /// After a reset round trip (which proves the connection answered, but not that it was not killed as it answered): one
    /// look, and true when the server has closed it meanwhile. MariaDB's <c>KILL</c> of a session busy with
    /// COM_RESET_CONNECTION lets the reset's OK out and closes at once; the close is then already on the socket.
    /// </summary>
    public bool ClosedAfterReset(PooledConnection connection) => _socketCheck?.Check(connection.Physical) == SocketVerdict.Retire;

    /// <summary>The current suspect epoch: a connection verified (created, pinged, reset with a round trip) in it is trusted.</summary>
    public int Epoch => Volatile.Read(ref _suspectEpoch);

    /// <summary>A borrower's connection died: its siblings may be dead too, so each is validated before its next handout.</summary>
    public void OnConnectionBroken() => Interlocked.Increment(ref _suspectEpoch);

    /// <summary>New pre-ping settings apply from the next checkout.</summary>
    public void Configure(CovetPoolOptions options)
    {
        Volatile.Write(ref _aliveWindow, pool.Clock.Units(options.AliveBypassWindow));
        Volatile.Write(ref _prePing, options.PrePing);
    }

    /// <summary>Whether a connection may be given out as it is, with no I/O (the fast path's test).</summary>
    public bool IsReady(PooledConnection connection, long now) =>
        !connection.Broken && !connection.NeedsReset && connection.Generation == pool.Generation && !connection.HasExpired(now) &&
        !SocketLookDue(connection, now) && // idle a while or back from a borrower that ran commands: the slow path looks first
        (!_prePing || (now - connection.LastUsedAt <= _aliveWindow && connection.VerifiedEpoch == Epoch));

    /// <summary>Validates a connection taken from the idle stack or handed over by a returner. False: it was destroyed (or, for a caller that cancelled during its reset, given back).</summary>
    /// <param name="connection">The connection to validate.</param>
    /// <param name="acquireStart">When the acquire began (precise clock: its deadline bounds the ping).</param>
    /// <param name="async">Whether I/O is asynchronous.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    public async ValueTask<bool> PrepareAsync(PooledConnection connection, long acquireStart, bool async, CancellationToken cancellationToken)
    {
        var now = pool.Clock.Now();
        if (connection.Broken || connection.Generation != pool.Generation || connection.HasExpired(now))
        {
            pool.Destroy(connection, connection.Broken ? "broken" : connection.HasExpired(now) ? "max lifetime reached" : "pool cleared");
            return false;
        }
        if (connection.NeedsReset)
        {
            // Handed over by a returner while we waited: we reset it ourselves, on our own thread, so a waiter never
            // depends on a thread-pool thread being free (sync callers may be occupying all of them). The caller's token
            // does not interrupt it (a reset is short and bounded by ValidationTimeout): one cut short would cost the
            // connection and a new one, and a cancelled MySqlConnector command opens a second server connection. A
            // caller that cancelled meanwhile gives the clean connection back (false: the acquire then sees the token).
            var reset = pool.Returns.TryResetAsync(connection, async, CancellationToken.None);
            if (!async || !cancellationToken.CanBeCanceled)
                return await reset.ConfigureAwait(false);
            var resetting = reset.AsTask();
            try
            {
                return await resetting.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The reset finishes for the pool: a clean connection goes to the next borrower (a failed one was destroyed).
                _ = resetting.ContinueWith(t =>
                {
                    if (t.IsCompletedSuccessfully && t.Result)
                        pool.MakeAvailable(connection);
                }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                return false;
            }
        }
        // One look at the socket of a connection idle a while, before the alive window is trusted: a connection the server
        // closed is retired with no round trip; one with unread bytes is pinged even inside the window.
        var verdict = SocketLookDue(connection, now) ? _socketCheck!.Check(connection.Physical) : SocketVerdict.AsBefore;
        connection.LookAtSocketNext = false;
        if (verdict == SocketVerdict.Retire)
        {
            Interlocked.Increment(ref pool.Counters.PrePingFailures);
            CovetLog.SocketCheckFoundClosed(pool.Logger, pool.Name, connection.Id);
            pool.Destroy(connection, "closed by the server (socket check)");
            return false;
        }
        var epoch = Epoch;
        if (_prePing && (verdict == SocketVerdict.Ping || now - connection.LastUsedAt > _aliveWindow || connection.VerifiedEpoch != epoch))
        {
            var timeout = Min(pool.Options.ValidationTimeout, pool.Acquisition.Remaining(acquireStart));
            var alive = await pool.Dialect.PingAsync(connection.Physical, pool.Options, timeout, async, cancellationToken).ConfigureAwait(false);
            if (!alive)
            {
                Interlocked.Increment(ref pool.Counters.PrePingFailures);
                CovetLog.PrePingFailed(pool.Logger, pool.Name, connection.Id);
                pool.Destroy(connection, "pre-ping failed");
                return false;
            }
            connection.LastUsedAt = pool.Clock.Now();
            connection.VerifiedEpoch = epoch;
        }
        return true;
    }

    /// <summary>
    /// Whether the checkout looks at the socket: idle longer than the threshold (on the coarse clock: across a tick), or
    /// back from a borrower that ran commands (whose round trips dwarf the look; this covers a kill within one tick).
    /// </summary>
    private bool SocketLookDue(PooledConnection connection, long now) =>
        _socketCheck is { } check && (connection.LookAtSocketNext || check.IsDue(connection.LastUsedAt, now));

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a == Timeout.InfiniteTimeSpan ? b : b == Timeout.InfiniteTimeSpan ? a : a < b ? a : b;
}
