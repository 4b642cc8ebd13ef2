using System.Diagnostics;
using Covet.Data.Diagnostics;
using Covet.Data.Pooling;

namespace Covet.Data.Health;

/// <summary>Where and on which thread a checkout was asked for (leak reports).</summary>
/// <remarks>The thread itself rather than its id and name: a queued waiter keeps this, and it is one field smaller.</remarks>
internal readonly record struct CheckoutSite(StackTrace? Trace, Thread? Thread);

/// <summary>
/// Who holds the pool's connections, and what happens when they hold them too long: the checkout site (thread, and a
/// sampled stack trace), the leak warning past <see cref="CovetPoolOptions.LeakDetectionThreshold"/>, the reclaim past
/// <see cref="CovetPoolOptions.MaxCheckoutDuration"/>, and the recovery of a connection whose borrower was
/// garbage-collected while open.
/// </summary>
/// <remarks>
/// <para>Contract: <see cref="CaptureSite"/> runs on the caller's thread at checkout; <see cref="Watch"/> runs on the
/// housekeeping scheduler (never concurrently with itself for one pool); <see cref="Holders"/> anywhere. Ownership of a
/// borrowed slot is decided by a compare-and-swap on <see cref="PooledConnection.Lease"/>: the borrower's Close, a
/// reclaim and a recovery race on it, and only the winner gives the slot back.</para>
/// <para>A weak reference to the borrower rather than a finalizer on the logical connection: re-registering for
/// finalization on every open and suppressing it on every close cost about 30 ns per checkout, a tenth of the cycle.</para>
/// </remarks>
internal sealed class LeakWatch(CovetPool pool)
{
    /// <summary>Adaptive stack traces: at most one sampled checkout per interval (outside a suspected-leak period).</summary>
    public static readonly TimeSpan TraceSampleInterval = TimeSpan.FromMilliseconds(100);

    private long _nextSampledTrace = long.MinValue;   // Adaptive stack traces: at most one sampled checkout per TraceSampleInterval...
    private long _captureAllUntil = long.MinValue;    // ...and every checkout until then (pool clock), after a suspected leak

    /// <summary>Where the caller is, taken on its own thread before any await, so a trace shows the caller's frames.</summary>
    public CheckoutSite CaptureSite(long now) => new(ShouldCaptureTrace(now) ? CheckoutStackTrace.Capture() : null, Thread.CurrentThread);

    /// <summary>
    /// Whether this checkout pays for a stack walk (see <see cref="CovetPoolOptions.LeakStackTraces"/>). Adaptive samples by
    /// time, not by count: at most one walk per <see cref="TraceSampleInterval"/> bounds the cost on a busy pool (a few
    /// µs ten times a second) while a quiet pool, where most leaks are easy to miss, has nearly every checkout traced.
    /// </summary>
    private bool ShouldCaptureTrace(long now)
    {
        switch (pool.Options.LeakStackTraces)
        {
            case CovetLeakStackTraces.Always:
                return true;
            case CovetLeakStackTraces.Never:
                return false;
        }
        if (now < Volatile.Read(ref _captureAllUntil))
            return true;
        if (now < Volatile.Read(ref _nextSampledTrace))
            return false;
        // Racy on purpose: two callers may both sample at the turn of an interval; it only costs one extra trace.
        Volatile.Write(ref _nextSampledTrace, now + pool.Clock.Units(TraceSampleInterval));
        return true;
    }

    /// <summary>One pass over the borrowed connections: warn, reclaim, recover the forgotten.</summary>
    public void Watch(long now)
    {
        var options = pool.Options;
        var detect = options.LeakDetectionThreshold > TimeSpan.Zero;
        foreach (var connection in pool.SnapshotAll())
        {
            // A checkout moves the lease to an odd number and every give-back (return, reclaim, recovery) to the next even
            // one, so an odd lease is held: a lease the borrower's Close has just moved on is never mistaken for a held one
            // in the moment before Close clears Borrowed.
            var lease = Volatile.Read(ref connection.Lease);
            if ((lease & 1) == 0 || !connection.Borrowed)
                continue;
            var held = pool.Clock.Elapsed(connection.CheckedOutAt, now);
            var trace = connection.CheckoutTrace;
            // The borrower is set before the lease moves, so with the lease unchanged below it is this lease's holder.
            var borrowerAlive = connection.Borrower.TryGetTarget(out _);
            if (Volatile.Read(ref connection.Lease) != lease || !connection.Borrowed)
                continue; // returned (and maybe borrowed again) while we looked

            if (!borrowerAlive)
            {
                RecoverForgotten(connection, lease);
                continue;
            }
            if (options.MaxCheckoutDuration > TimeSpan.Zero && held >= options.MaxCheckoutDuration)
            {
                if (Interlocked.CompareExchange(ref connection.Lease, lease + 1, lease) != lease)
                    continue;
                if (Interlocked.Exchange(ref connection.LeakReported, 1) == 0)
                    Interlocked.Increment(ref pool.Counters.LeaksDetected);
                Interlocked.Increment(ref pool.Counters.LeaksReclaimed);
                CovetLog.LeakReclaimed(pool.Logger, pool.Name, connection.Id, held.TotalSeconds, options.MaxCheckoutDuration.TotalSeconds, CheckoutStackTrace.Format(trace));
                TakeBack(connection, "reclaimed: held past MaxCheckoutDuration");
            }
            else if (detect && held >= options.LeakDetectionThreshold && Interlocked.CompareExchange(ref connection.LeakReported, 1, 0) == 0)
            {
                // A leak is suspected: from now on (for 15 minutes) every checkout records where it came from.
                Volatile.Write(ref _captureAllUntil, now + pool.Clock.Units(TimeSpan.FromMinutes(15)));
                Interlocked.Increment(ref pool.Counters.LeaksDetected);
                CovetLog.LeakSuspected(pool.Logger, pool.Name, connection.Id, held.TotalSeconds, options.LeakDetectionThreshold.TotalSeconds,
                    connection.CheckoutThreadId, connection.CheckoutThreadName, CheckoutStackTrace.Format(trace));
            }
        }
    }

    /// <summary>At disposal (the watch stops with the scheduler): closes what forgotten borrowers still hold.</summary>
    public void SweepForgotten()
    {
        foreach (var connection in pool.SnapshotAll())
        {
            var lease = Volatile.Read(ref connection.Lease);
            if ((lease & 1) == 1 && connection.Borrowed && !connection.Borrower.TryGetTarget(out _))
                RecoverForgotten(connection, lease);
        }
    }

    /// <summary>The borrower was garbage-collected while open: the slot's weak reference to it is empty.</summary>
    private void RecoverForgotten(PooledConnection connection, long lease)
    {
        if (Interlocked.CompareExchange(ref connection.Lease, lease + 1, lease) != lease)
            return;
        Interlocked.Increment(ref pool.Counters.ForgottenConnections);
        Interlocked.Increment(ref pool.Counters.LeaksDetected);
        var held = pool.Clock.Elapsed(connection.CheckedOutAt, pool.Clock.Now());
        CovetLog.ForgottenConnection(pool.Logger, pool.Name, connection.Id, held.TotalSeconds, CheckoutStackTrace.Format(connection.CheckoutTrace));
        TakeBack(connection, "logical connection garbage-collected while open");
    }

    /// <summary>
    /// Closes a slot the pool took back from its borrower (reclaimed or forgotten; the caller won the lease). In one step
    /// under the lock it stops being borrowed, enlisted and live, so neither a later open in the same transaction nor the
    /// transaction's completion can take it for a parked connection before it is gone.
    /// </summary>
    private void TakeBack(PooledConnection connection, string reason)
    {
        bool closed;
        lock (pool.Gate)
        {
            connection.Borrowed = false;
            pool.Enlistment.ForgetLocked(connection);
            closed = pool.MarkClosedLocked(connection);
        }
        if (closed)
            pool.Connections.Close(connection, reason);
    }

    /// <summary>The longest-held checkouts, longest first.</summary>
    public IReadOnlyList<CovetCheckoutInfo> Holders(int max)
    {
        var now = pool.Clock.Now();
        return pool.SnapshotAll()
            .Where(c => c.Borrowed)
            // A checkout racing this snapshot may stamp CheckedOutAt after `now` was read: held for no time yet, never negative.
            .Select(c => (Connection: c, Held: TimeSpan.FromTicks(Math.Max(0, pool.Clock.Elapsed(c.CheckedOutAt, now).Ticks)), Trace: c.CheckoutTrace))
            .OrderByDescending(h => h.Held)
            .Take(max)
            .Select(h => new CovetCheckoutInfo(h.Held, h.Connection.CheckoutThreadId, h.Connection.CheckoutThreadName,
                h.Trace is null ? null : CheckoutStackTrace.Format(h.Trace)))
            .ToList();
    }

    /// <summary>Checkouts held past the leak threshold right now.</summary>
    public int SuspectedCount(long now) =>
        pool.Options.LeakDetectionThreshold > TimeSpan.Zero
            ? pool.SnapshotAll().Count(c => c.Borrowed && pool.Clock.Elapsed(c.CheckedOutAt, now) >= pool.Options.LeakDetectionThreshold)
            : 0;
}
