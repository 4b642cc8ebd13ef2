using System.Diagnostics;
using System.Transactions;
using Covet.Data.Diagnostics;
using Covet.Data.Health;

namespace Covet.Data.Pooling;

/// <summary>
/// The slow path of a checkout, for everything the fast path (<see cref="CovetPool.TryAcquireReady"/>) does not take:
/// an ambient transaction, a connection that needs a ping or a reset, a free slot to open a new connection in, or no
/// connection at all (wait in the <see cref="WaiterQueue"/>). Every attempt stays within one acquire deadline.
/// </summary>
/// <remarks>
/// Contract: the decision "idle connection, else one pending a reset, else a free slot, else wait" is taken under the
/// pool's lock in one step; everything after it (opening, validating, enlisting) runs outside the lock on the caller's
/// own thread (or, for a bound waiter, on the thread-pool thread that finishes its hand-over).
/// </remarks>
internal sealed class Acquisition(CovetPool pool)
{
    private long _timeoutUnits = pool.Clock.PreciseUnits(pool.Options.AcquireTimeout); // precise clock; long.MaxValue when infinite

    /// <summary>A new acquire timeout applies from the next acquire on.</summary>
    public void OnAcquireTimeoutChanged(TimeSpan timeout) => Volatile.Write(ref _timeoutUnits, pool.Clock.PreciseUnits(timeout));

    /// <summary>What is left of an acquire that started at <paramref name="start"/> (precise clock; infinite when AcquireTimeout is).</summary>
    public TimeSpan Remaining(long start)
    {
        var units = Volatile.Read(ref _timeoutUnits);
        if (units == long.MaxValue)
            return Timeout.InfiniteTimeSpan;
        return TimeSpan.FromSeconds((start + units - pool.Clock.Precise()) / (double)pool.Clock.Time.TimestampFrequency);
    }

    /// <summary>Borrows a connection. The returned lease is the caller's ownership token for <see cref="CovetPool.Return"/>.</summary>
    /// <param name="borrower">The logical connection that will hold the lease (weakly referenced: see <see cref="PooledConnection.Borrower"/>).</param>
    /// <param name="async">Whether I/O is asynchronous.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    public ValueTask<(PooledConnection Connection, long Lease)> AcquireAsync(object borrower, bool async, CancellationToken cancellationToken)
    {
        var start = pool.Clock.Precise();
        // Where the caller is, taken before the first await: after it, the code may run on a thread-pool continuation
        // whose stack no longer shows the user's frames.
        var site = pool.LeakDetection ? pool.Leaks.CaptureSite(pool.Clock.Now()) : default;
        return AcquireCoreAsync(borrower, async, cancellationToken, start, site, handedOver: false, handed: null);
    }

    /// <param name="borrower">See <see cref="AcquireAsync"/>.</param>
    /// <param name="async">Whether I/O is asynchronous.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <param name="start">When the acquire began (precise clock): its deadline is measured from here.</param>
    /// <param name="site">Where the caller asked (taken on the caller's thread).</param>
    /// <param name="handedOver">A queued waiter was served: <paramref name="handed"/> is its connection to validate, or null for a
    /// reserved slot to open a connection in; the first attempt starts from it instead of the idle stack.</param>
    /// <param name="handed">See <paramref name="handedOver"/>.</param>
    private async ValueTask<(PooledConnection Connection, long Lease)> AcquireCoreAsync(object borrower, bool async, CancellationToken cancellationToken,
        long start, CheckoutSite site, bool handedOver, PooledConnection? handed)
    {
        Transaction? transaction = null;
        if (!handedOver)
        {
            if (pool.Breaker.State == CovetCircuitState.Open)
                pool.Breaker.ThrowIfRejecting(); // fail fast while the database is down, even when idle (likely dead) connections remain
            transaction = pool.Enlists ? Transaction.Current : null; // the provider's Open would not enlist otherwise
            if (transaction is not null && pool.Enlistment.TryTakeParked(transaction) is { } enlisted)
                return (enlisted, pool.Statistics.CheckOut(enlisted, borrower, site, start));
        }

        Activity? activity = null; // only for checkouts that wait or open a connection: the fast path stays span-free
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                // Each dead idle connection costs a ping; together they must not outlast the acquire timeout.
                if (attempt > 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (Remaining(start) <= TimeSpan.Zero)
                        throw pool.ExhaustedException("validating idle connections used up the acquire timeout");
                }
                PooledConnection? connection = null;
                Waiter? waiter = null;
                var create = false;
                if (attempt == 0 && handedOver)
                {
                    connection = handed;
                    create = handed is null;
                }
                else
                {
                    (connection, create, waiter) = TakeOrReserveOrWait(start);
                }

                if ((waiter is not null || create) && activity is null && CovetMetrics.ActivitySource.HasListeners())
                {
                    activity = CovetMetrics.ActivitySource.StartActivity("covet.acquire", ActivityKind.Client);
                    activity?.SetTag(CovetMetrics.PoolNameTag, pool.Name);
                    activity?.SetTag("covet.acquire.path", waiter is not null ? "wait" : "create");
                }

                if (waiter is not null)
                {
                    WaiterQueue.BeginWait(waiter, cancellationToken);
                    if (async)
                        await waiter.Task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    else
                        pool.Waiters.WaitBlocking(waiter);
                    connection = pool.Waiters.EndWait(waiter, cancellationToken);
                    create = connection is null; // a freed slot was handed to us: we open the connection
                }

                if (create)
                {
                    connection = await pool.Connections.CreateAsync(async, start, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    bool usable;
                    try
                    {
                        usable = await pool.Validation.PrepareAsync(connection!, start, async, cancellationToken).ConfigureAwait(false);
                    }
                    catch
                    {
                        // Cancelled mid-ping or mid-reset: its state is unknown, so it is closed rather than re-pooled.
                        pool.Destroy(connection!, "validation interrupted");
                        throw;
                    }
                    if (!usable)
                        continue; // it was dead or stale and has been destroyed; try again within the same deadline
                }

                if (transaction is not null)
                    pool.Enlistment.Enlist(connection!, transaction);
                return (connection!, pool.Statistics.CheckOut(connection!, borrower, site, start));
            }
        }
        catch (Exception e) when (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
        finally
        {
            activity?.Dispose();
        }
    }

    /// <summary>
    /// <see cref="CovetPool.TryAcquireReady"/> for a plain async open (no StateChange handler), which may also wait without an async
    /// state machine: when the pool is exhausted (nothing idle, nothing being reset, every slot taken) the caller is queued
    /// as a bound <see cref="Waiter"/> and its task, which completes once <paramref name="borrower"/> is open, is returned.
    /// </summary>
    /// <returns>A completed task: <paramref name="borrower"/> is open. A waiter's task. Null: nothing was taken or queued,
    /// use <see cref="AcquireAsync"/> (it opens, validates, enlists, traces and reports everything else).</returns>
    public Task? TryAcquireReadyOrWait(CovetDbConnection borrower, CancellationToken cancellationToken)
    {
        if (pool.Breaker.State == CovetCircuitState.Open || (pool.Enlists && Transaction.Current is not null))
            return null;
        var now = pool.Clock.Now();
        // Where the caller is, taken outside the lock (a sampled trace is a stack walk), and only when it may wait: with an
        // idle connection in sight the checkout takes it after the lock. (Racy reads: a wrong guess only means the slow
        // path captures the site again.)
        var mayWait = pool.Idle.Count == 0 && Volatile.Read(ref pool.Total) >= pool.Options.MaxPoolSize;
        var site = mayWait && pool.LeakDetection ? pool.Leaks.CaptureSite(now) : default;
        PooledConnection? ready = null;
        Waiter? waiter = null;
        bool wake;
        lock (pool.Gate)
        {
            if (pool.Disposed || pool.State != CovetPoolState.Running)
                return null; // paused: the slow path queues the caller (a pause is rare; its waiters may cost a state machine)
            if (pool.Idle.Count > 0)
            {
                if ((ready = pool.TakeReadyIdleLocked(now)) is null)
                    return null;
            }
            else if (mayWait && pool.Returns.PendingCountLocked == 0 && pool.Total >= pool.Options.MaxPoolSize && !CovetMetrics.ActivitySource.HasListeners())
            {
                waiter = pool.Waiters.EnqueueLocked(pool.Clock.Precise(), borrower, site);
            }
            else
            {
                return null;
            }
            wake = pool.WakeLocked();
        }
        if (wake)
            pool.Wake();
        if (ready is not null)
        {
            if (!mayWait && pool.LeakDetection)
                site = pool.Leaks.CaptureSite(now);
            borrower.Attach(ready, pool.Statistics.CheckOutFast(ready, borrower, site, now));
            return Task.CompletedTask;
        }
        // Registered after the waiter is queued, so a returner may have served it already: then the registration is
        // dropped here (the fence orders our write of the registration before our read of the claim).
        WaiterQueue.BeginWait(waiter!, cancellationToken);
        Interlocked.MemoryBarrier();
        if (waiter!.IsClaimed)
            waiter.Cancellation.Unregister();
        return waiter.Task;
    }

    /// <summary>
    /// The slow path's step under the lock: an idle connection (to validate), else one waiting for a background reset
    /// (to reset ourselves: one round trip rather than a new connection or a wait), else a free slot reserved to open a
    /// connection in, else a queued waiter. While the pool is paused or draining, always a queued waiter (see <see cref="Pausing"/>).
    /// </summary>
    private (PooledConnection? Connection, bool Create, Waiter? Waiter) TakeOrReserveOrWait(long start)
    {
        (PooledConnection?, bool, Waiter?) outcome;
        bool wake;
        lock (pool.Gate)
        {
            ObjectDisposedException.ThrowIf(pool.Disposed, pool);
            if (pool.State != CovetPoolState.Running)
                outcome = (null, false, pool.Waiters.EnqueueLocked(start, null, default));
            else if (pool.Idle.Count > 0)
                outcome = (pool.Idle.Pop(), false, null);
            else if (pool.Returns.TryTakePendingLocked(out var pending))
                outcome = (pending, false, null);
            else if (pool.Total < pool.Options.MaxPoolSize)
            {
                pool.Total++;
                outcome = (null, true, null);
            }
            else
                outcome = (null, false, pool.Waiters.EnqueueLocked(start, null, default));
            wake = pool.WakeLocked();
        }
        if (wake)
            pool.Wake();
        return outcome;
    }

    /// <summary>
    /// Matches the queued waiters, oldest first, with idle connections, connections waiting for a reset and free slots
    /// (reserved here for the waiter, who opens a connection in it), after the pool began serving again or got room
    /// (<see cref="Pausing.Resume"/>, a raised maximum). Under the pool lock, so no newcomer reaches the idle stack ahead of
    /// them; <see cref="HandOver"/> after the lock delivers.
    /// </summary>
    public List<(Waiter Waiter, PooledConnection? Connection)> MatchWaitersLocked()
    {
        List<(Waiter Waiter, PooledConnection? Connection)> handovers = [];
        if (pool.Disposed || pool.State != CovetPoolState.Running)
            return handovers;
        while (true)
        {
            var hasIdle = pool.Idle.Count > 0;
            var hasPending = !hasIdle && pool.Returns.PendingCountLocked > 0;
            if (!hasIdle && !hasPending && pool.Total >= pool.Options.MaxPoolSize)
                break; // nothing left to hand: later returns and freed slots reach the waiters through the return path
            if (pool.Waiters.DequeueLiveLocked() is not { } waiter)
                break;
            PooledConnection? connection = null;
            if (hasIdle)
                connection = pool.Idle.Pop();
            else if (hasPending)
                pool.Returns.TryTakePendingLocked(out connection!);
            else
                pool.Total++; // reserved for the waiter, who opens a connection in it
            handovers.Add((waiter, connection));
        }
        return handovers;
    }

    /// <summary>Delivers what <see cref="MatchWaitersLocked"/> matched (outside the lock). Returns how many waiters were served.</summary>
    public int HandOver(List<(Waiter Waiter, PooledConnection? Connection)> handovers)
    {
        var served = 0;
        foreach (var (waiter, connection) in handovers)
        {
            if (waiter.TryHand(connection))
            {
                served++;
                continue;
            }
            // The waiter gave up (cancelled, expired) meanwhile: what was meant for it goes back (to the next waiter, if any).
            if (connection is null)
                pool.ReleaseSlot();
            else
                pool.MakeAvailable(connection);
        }
        return served;
    }

    /// <summary>
    /// A bound waiter was handed a connection: when it needs nothing before use, check it out to the waiter's borrower
    /// right here on the returner's thread (its task completes from the work item). False: it needs a ping or a reset first.
    /// </summary>
    public bool TryCheckOutToWaiter(Waiter waiter, PooledConnection connection)
    {
        if (!pool.Validation.IsReady(connection, pool.Clock.Now()))
            return false;
        waiter.Borrower!.Attach(connection, pool.Statistics.CheckOut(connection, waiter.Borrower!, waiter.Site, waiter.Start));
        return true;
    }

    /// <summary>A bound waiter's connection needs a ping, a reset or opening: the rest of an acquire, then the borrower is open.</summary>
    public async Task FinishHandOverAsync(Waiter waiter, PooledConnection? handed)
    {
        try
        {
            var (connection, lease) = await AcquireCoreAsync(waiter.Borrower!, async: true, waiter.Cancellation.Token, waiter.Start, waiter.Site,
                handedOver: true, handed).ConfigureAwait(false);
            waiter.Open(connection, lease);
        }
        catch (Exception e)
        {
            waiter.Fail(e);
        }
    }
}
