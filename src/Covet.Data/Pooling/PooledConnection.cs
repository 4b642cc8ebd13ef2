using System.Data.Common;
using System.Diagnostics;
using System.Transactions;

namespace Covet.Data.Pooling;

/// <summary>
/// One physical connection and the pool's bookkeeping about it (a slot). It references the logical
/// <see cref="CovetDbConnection"/> that borrows it only weakly (<see cref="Borrower"/>), so a forgotten logical connection
/// can be garbage-collected and the leak watch can hand the slot back.
/// </summary>
/// <remarks>
/// Ownership is decided by <see cref="Lease"/>: a borrower holds the lease value it got at checkout, and whoever moves the
/// lease on with a compare-and-swap (the borrower's return, a reclaim, the recovery of a forgotten borrower) is the only one who may give the slot
/// back. Every other field is written either under the pool lock or by the current owner alone.
/// </remarks>
internal sealed class PooledConnection
{
    public PooledConnection(CovetPool pool, DbConnection physical, long createdAt, long expiresAt, int id)
    {
        Pool = pool;
        Physical = physical;
        CreatedAt = createdAt;
        ExpiresAt = expiresAt;
        LastUsedAt = createdAt;
        Id = id;
    }

    public CovetPool Pool { get; }
    public DbConnection Physical { get; }
    public int Id { get; }

    /// <summary>Pool-clock timestamp (<see cref="PoolClock.Now"/>) of creation; every timestamp of a slot is on that clock.</summary>
    public long CreatedAt { get; }

    /// <summary>
    /// Timestamp after which the connection is retired (max lifetime with spread); long.MaxValue when off. Rewritten when
    /// MaxLifetime is reconfigured live (a single 64-bit write, so a racy reader sees the old or the new expiry, never a mix).
    /// </summary>
    public long ExpiresAt { get; set; }

    /// <summary>Last time the connection was known alive: created, validated, reset or returned after use.</summary>
    public long LastUsedAt;

    /// <summary>The pool's suspect epoch when this connection last proved alive (created, pinged, reset with a round trip).</summary>
    public int VerifiedEpoch;

    /// <summary>Idle since (for idle timeout); written when pushed to the idle stack.</summary>
    public long IdleSince;

    /// <summary>Ownership token, see the class remarks. Odd while borrowed: a checkout and each give-back move it on by one.</summary>
    public long Lease;

    /// <summary>Written under the pool lock.</summary>
    public SlotState State;

    /// <summary>Pool generation when created; a <c>ClearPool</c> bumps the pool's generation so older connections are retired.</summary>
    public int Generation;

    // --- Checkout bookkeeping: written by the borrower at checkout, read by the leak watcher. ---

    /// <summary>
    /// The logical connection holding the current lease, weakly, so the slot never keeps a forgotten borrower alive: when the
    /// GC has collected it while the slot is still borrowed, the leak watch hands the slot back. Set before the lease moves.
    /// </summary>
    public readonly WeakReference<object> Borrower = new(null!);

    public long CheckedOutAt;
    public StackTrace? CheckoutTrace;
    public int CheckoutThreadId;
    public string? CheckoutThreadName;
    public int LeakReported; // 0/1, set with Interlocked by the leak watcher

    /// <summary>Precise timestamp of a checkout sampled for use-time statistics; 0 when this checkout is not timed.</summary>
    public long PreciseCheckoutAt;

    /// <summary>Checkouts of this slot that took the fast path (written only by the slot's owner at checkout, so no atomic).</summary>
    public long FastCheckouts;

    /// <summary>A borrower ran something that may have changed session state; reset before the next borrower.</summary>
    public bool NeedsReset;

    /// <summary>
    /// The last borrower ran something on it (it came back dirty): its next checkout looks at the socket whatever the
    /// idle time (issue 13). Written by the returner, read and cleared by the next owner.
    /// </summary>
    public bool LookAtSocketNext;

    /// <summary>Session reset is off but the borrower left a SQL-level transaction open: roll it back, nothing more.</summary>
    public bool RollbackOnly;

    /// <summary>The borrower called ChangeDatabase: never re-pool (resets do not restore the database everywhere).</summary>
    public bool DatabaseChanged;

    /// <summary>
    /// Readers that Covet's commands handed out to the current borrower (a DbDataReader, or a List of them where SQLite
    /// allows several): closed by the borrower's Close before the return. Kept here, on the long-lived slot, so the
    /// logical connection (the open → close cycle's only allocation) does not grow. Written by the borrower alone.
    /// </summary>
    public object? Readers;

    /// <summary>A connection-level error was seen: never re-pool.</summary>
    public volatile bool Broken;

    /// <summary>The ambient transaction the physical connection is enlisted in, if any.</summary>
    public Transaction? EnlistedIn;

    /// <summary>Set while the slot is borrowed by a logical connection (as opposed to parked for an enlisted transaction).</summary>
    public volatile bool Borrowed;

    /// <summary>The borrower's transaction left open at return; rolled back before the next borrower.</summary>
    public DbTransaction? PendingRollback;

    public bool HasExpired(long now) => now >= ExpiresAt;

    /// <summary>
    /// Lends the slot to a new borrower: records the checkout (when, where, on the precise clock if this checkout is timed)
    /// and hands out the next lease. Only the new owner calls this (it took the slot under the pool lock or was handed it).
    /// </summary>
    public long Lend(object borrower, Health.CheckoutSite site, long now, long preciseNow)
    {
        // Before the lease moves: a leak watcher that reads the new lease then finds this borrower, never the previous one.
        Borrower.SetTarget(borrower);
        CheckedOutAt = now;
        PreciseCheckoutAt = preciseNow;
        CheckoutTrace = site.Trace;
        CheckoutThreadId = site.Thread?.ManagedThreadId ?? 0;
        CheckoutThreadName = site.Thread?.Name;
        LeakReported = 0;
        // A plain (release) write is enough: the lease is even while nobody holds the slot, and every competing writer (a
        // stale Close, the leak watch) compare-and-swaps from an odd value it read, so none can succeed until this write.
        var lease = Lease + 1;
        Volatile.Write(ref Lease, lease);
        Borrowed = true;
        return lease;
    }

    public override string ToString() => $"#{Id}";
}

internal enum SlotState
{
    Idle,
    InUse,
    Resetting,
    Closed,
}
