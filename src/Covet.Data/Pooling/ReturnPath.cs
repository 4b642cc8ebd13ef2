using System.Data;
using System.Data.Common;
using Covet.Data.Diagnostics;

namespace Covet.Data.Pooling;

/// <summary>
/// What happens to a connection its borrower gave back: destroyed when it cannot be made safe for the next borrower
/// (broken, busy, database changed, expired, cleared), otherwise made clean without a round trip on the caller's path —
/// Npgsql's reset queued to travel with the next command, SQLite's reset inline (no network), anything else handed dirty
/// to the oldest waiter (who resets it on its own thread) or queued for a background reset that any caller finding no
/// idle connection may take over — and then made available (<see cref="CovetPool.MakeAvailable"/>).
/// </summary>
/// <remarks>
/// Contract: <see cref="ReturnToPool"/> is called by the connection's owner (the borrower that won the lease, or the
/// completion of its transaction). The queue of connections waiting for a background reset is guarded by the pool's lock.
/// </remarks>
internal sealed class ReturnPath(CovetPool pool)
{
    private readonly Queue<PooledConnection> _pendingReset = new(); // guarded by the pool lock: returned dirty, no one waiting

    /// <summary>Connections waiting for a background reset. Under the pool lock.</summary>
    public int PendingCountLocked => _pendingReset.Count;

    /// <summary>A connection waiting for a background reset, taken by a caller who resets it itself. Under the pool lock.</summary>
    public bool TryTakePendingLocked(out PooledConnection connection)
    {
        if (!_pendingReset.TryDequeue(out connection!))
            return false;
        connection.State = SlotState.InUse;
        return true;
    }

    /// <summary>Queues a dirty connection for a background reset. Under the pool lock; the caller queues <see cref="ResetInBackground"/> after it.</summary>
    public void EnqueuePendingLocked(PooledConnection connection)
    {
        connection.State = SlotState.Resetting;
        _pendingReset.Enqueue(connection);
    }

    /// <summary>Every connection waiting for a background reset, removed (for Clear and disposal). Under the pool lock.</summary>
    public void TakeAllPendingLocked(List<PooledConnection> into)
    {
        while (TryTakePendingLocked(out var pending))
            into.Add(pending);
    }

    public void ReturnToPool(PooledConnection connection, long now)
    {
        if (connection.Broken || connection.Physical.State != ConnectionState.Open)
        {
            pool.Validation.OnConnectionBroken();
            pool.Destroy(connection, "broken");
            return;
        }
        if (!pool.Dialect.IsReusable(connection.Physical))
        {
            // A command still running or a protocol out of sync: no reset can make it safe for the next borrower.
            pool.Destroy(connection, "returned busy or out of sync");
            return;
        }
        if (!pool.KeepsIdle)
        {
            pool.Destroy(connection, "not pooled by the provider"); // an in-memory SQLite database dies with its connection, as without Covet
            return;
        }
        if (!pool.ResetEnabled && pool.Dialect.InTransaction(connection.Physical))
            connection.NeedsReset = connection.RollbackOnly = true; // reset off, but a transaction is never inherited
        // A borrower that ran commands paid round trips: one more look at the socket at the next checkout costs it ~1 µs,
        // and covers a kill that lands before the checkout clock (milliseconds) has ticked (issue 13).
        connection.LookAtSocketNext = connection.NeedsReset;
        if (connection.DatabaseChanged)
        {
            // Resets do not restore the current database on every server; a fresh connection is the safe answer.
            pool.Destroy(connection, "database changed by the borrower");
            return;
        }
        if (pool.IsDisposed || connection.HasExpired(now) || connection.Generation != pool.Generation)
        {
            pool.Destroy(connection, pool.IsDisposed ? "pool disposed" : connection.HasExpired(now) ? "max lifetime reached" : "pool cleared");
            return;
        }
        if (!connection.NeedsReset || !(pool.ResetEnabled || connection.PendingRollback is not null || connection.RollbackOnly))
        {
            connection.NeedsReset = false;
            connection.LastUsedAt = now;
            pool.MakeAvailable(connection, now);
            return;
        }
        if (pool.Dialect.ResetIsLocal)
        {
            // No network: reset inline (SQLite).
            if (TryResetAsync(connection, async: false, CancellationToken.None).GetAwaiter().GetResult())
                pool.MakeAvailable(connection);
            return;
        }
        if (pool.QueueReset && connection.PendingRollback is null && pool.Dialect.TryQueueResetWithNextCommand(connection.Physical))
        {
            // The driver sends the reset together with the next command (Npgsql's own pool does the same): no round trip
            // at all, and the connection is available at once.
            connection.NeedsReset = false;
            connection.LastUsedAt = now;
            pool.MakeAvailable(connection, now);
            return;
        }
        pool.MakeAvailable(connection); // to a waiter (who resets it) or to a background reset
    }

    /// <summary>
    /// Resets one connection waiting for a background reset, if a borrower has not taken it meanwhile (a caller that
    /// finds no idle connection resets a pending one itself rather than wait for this work item, so progress never
    /// depends on a free thread-pool thread).
    /// </summary>
    public void ResetInBackground() => ThreadPool.UnsafeQueueUserWorkItem(static self => _ = self.ResetOnePendingAsync(), this, preferLocal: false);

    private async Task ResetOnePendingAsync()
    {
        PooledConnection? connection;
        lock (pool.Gate)
        {
            if (!TryTakePendingLocked(out connection))
                return;
        }
        if (await TryResetAsync(connection, async: true, CancellationToken.None).ConfigureAwait(false))
            pool.MakeAvailable(connection);
    }

    /// <summary>Rolls back a pending transaction and resets the session. False: it failed and the connection was destroyed.</summary>
    public async ValueTask<bool> TryResetAsync(PooledConnection connection, bool async, CancellationToken cancellationToken)
    {
        try
        {
            if (connection.PendingRollback is { } transaction)
            {
                connection.PendingRollback = null;
                if (async)
                {
                    // The caller's token bounds the wait but never reaches the driver (see ProviderDialect.ExecuteAsync).
                    await Providers.Deadline.WithinAsync(transaction.RollbackAsync(CancellationToken.None), connection.Physical, pool.Options.ValidationTimeout,
                        pool.Clock.Time, cancellationToken, pool.Dialect).ConfigureAwait(false);
                }
                else
                    transaction.Rollback();
                transaction.Dispose();
            }
            var epoch = pool.Validation.Epoch;
            if (connection.RollbackOnly)
            {
                connection.RollbackOnly = false;
                await pool.Dialect.RollbackAsync(connection.Physical, pool.Options, async, cancellationToken).ConfigureAwait(false);
            }
            if (pool.ResetEnabled)
                await pool.Dialect.ResetAsync(connection.Physical, pool.Options, async, cancellationToken).ConfigureAwait(false);
            if (pool.Validation.ClosedAfterReset(connection)) // killed as it answered the reset (issue 13)
                throw new IOException("the server closed the connection right after answering its session reset (socket check)");
            connection.NeedsReset = false;
            connection.LastUsedAt = pool.Clock.Now();
            if (pool.ResetEnabled)
                connection.VerifiedEpoch = epoch; // a reset is a round trip: the connection answered
            return true;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            Interlocked.Increment(ref pool.Counters.ResetFailures);
            CovetLog.ResetFailed(pool.Logger, pool.Name, connection.Id, e);
            pool.Destroy(connection, "session reset failed");
            return false;
        }
    }
}
