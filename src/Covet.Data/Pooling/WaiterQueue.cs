using Covet.Data.Health;

namespace Covet.Data.Pooling;

/// <summary>
/// The callers waiting for a connection of one pool, first come, first served, and the one timer that expires them.
/// </summary>
/// <remarks>
/// <para>Contract: the queue itself (<c>*Locked</c> members) is guarded by the pool's lock (<see cref="CovetPool.Gate"/>),
/// because "nothing idle, every slot taken, so wait" must be decided atomically with the idle stack and the slot count.
/// The count of live waiters (<see cref="Count"/>) is written with <see cref="Interlocked"/> by whoever claims a waiter.
/// The queue may hold waiters that were already claimed elsewhere (cancelled, expired); they are skipped on dequeue and
/// dropped by the timer, so it never grows with the dead.</para>
/// <para>Why FIFO: a returned connection, or a freed slot, goes to the oldest live waiter before it goes back to the idle
/// stack, and a newcomer only reaches the idle stack when no one is waiting, so no caller can barge ahead of one who has
/// been waiting. One timer per pool (not per waiter), due at the earliest deadline, expires waiters: ten thousand
/// waiters cost one timer. It is created on the first wait (most pools never wait).</para>
/// </remarks>
internal sealed class WaiterQueue(CovetPool pool)
{
    /// <summary>Marks a waiter whose deadline passed; never thrown (the waiter builds the real exception).</summary>
    public static readonly TimeoutException WaitTimedOut = new("Covet acquire deadline passed.");

    private static readonly TimeSpan SyncWaitSlice = TimeSpan.FromMilliseconds(50);

    private readonly Queue<Waiter> _queue = new();   // guarded by the pool lock
    private long _timerDue = long.MaxValue;           // guarded by the pool lock: when the timer fires next
    private ITimer? _timer;                           // guarded by the pool lock; created on the first wait
    private int _live;                                // Interlocked: waiters not yet claimed
    private long _deadlineUnits = pool.Clock.PreciseUnits(pool.Options.AcquireTimeout); // long.MaxValue when infinite

    /// <summary>Live waiters.</summary>
    public int Count => Volatile.Read(ref _live);

    /// <summary>When an acquire that began at <paramref name="start"/> (precise clock) times out (long.MaxValue: never).</summary>
    public long DeadlineOf(long start) => _deadlineUnits == long.MaxValue ? long.MaxValue : start + _deadlineUnits;

    /// <summary>A new acquire timeout applies to waiters that start from now on.</summary>
    public void OnAcquireTimeoutChanged(TimeSpan timeout) => Volatile.Write(ref _deadlineUnits, pool.Clock.PreciseUnits(timeout));

    /// <summary>Called by the waiter that was claimed.</summary>
    public void OnClaimed() => Interlocked.Decrement(ref _live);

    /// <summary>Queues a waiter with its deadline. Under the pool lock.</summary>
    public Waiter EnqueueLocked(long start, CovetDbConnection? borrower, CheckoutSite site)
    {
        var waiter = new Waiter(pool, start, borrower, site);
        var deadline = waiter.Deadline;
        _queue.Enqueue(waiter);
        Interlocked.Increment(ref _live);
        if (deadline < _timerDue)
            ScheduleLocked(deadline, pool.Clock.Precise());
        return waiter;
    }

    /// <summary>The oldest waiter that has not given up, or null. Under the pool lock.</summary>
    public Waiter? DequeueLiveLocked()
    {
        while (_queue.TryDequeue(out var waiter))
        {
            if (!waiter.IsClaimed)
                return waiter;
        }
        return null;
    }

    /// <summary>Every queued waiter, removed (for disposal). Under the pool lock.</summary>
    public List<Waiter> TakeAllLocked()
    {
        List<Waiter> all = [.. _queue];
        _queue.Clear();
        return all;
    }

    public void DisposeTimer()
    {
        lock (pool.Gate)
        {
            _timer?.Dispose();
            _timer = null;
            _timerDue = long.MaxValue;
        }
    }

    private void ScheduleLocked(long due, long now)
    {
        _timerDue = due;
        if (due == long.MaxValue || pool.Disposed)
            return;
        if (_timer is null)
        {
            // No caller's ExecutionContext: its AsyncLocals would live as long as the pool.
            using (ExecutionContext.SuppressFlow())
                _timer = pool.Clock.Time.CreateTimer(static s => ((WaiterQueue)s!).ExpireDue(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        _timer.Change(pool.Clock.Time.GetElapsedTime(now, Math.Max(now, due)), Timeout.InfiniteTimeSpan);
    }

    /// <summary>The timer: expires every waiter past its deadline, drops finished ones, re-arms for the next deadline.</summary>
    private void ExpireDue()
    {
        List<Waiter>? expired = null;
        lock (pool.Gate)
        {
            var now = pool.Clock.Precise();
            var next = long.MaxValue;
            for (var i = _queue.Count; i > 0; i--)
            {
                var waiter = _queue.Dequeue();
                if (waiter.IsClaimed)
                    continue;
                if (waiter.Deadline <= now)
                {
                    (expired ??= []).Add(waiter);
                    continue;
                }
                next = Math.Min(next, waiter.Deadline);
                _queue.Enqueue(waiter); // order is kept: every live waiter goes round once
            }
            ScheduleLocked(next, now);
        }
        if (expired is not null)
            foreach (var waiter in expired)
                waiter.TryExpire();
    }

    // Waiting is split into three plain methods around one await in Acquisition, so a waiting caller costs one async
    // state machine, not two (memory per waiter matters with thousands of them).

    public static void BeginWait(Waiter waiter, CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
            waiter.Cancellation = cancellationToken.UnsafeRegister(static w => ((Waiter)w!).TryCancel(), waiter);
    }

    /// <summary>
    /// A sync caller's wait. The timer expires waiters, but it needs a thread-pool thread, which sync callers may have
    /// tied up; so this waits in slices and checks the deadline on the pool's clock itself.
    /// </summary>
    public void WaitBlocking(Waiter waiter)
    {
        try
        {
            while (!waiter.Task.Wait(SyncWaitSlice))
            {
                if (pool.Clock.Precise() >= waiter.Deadline)
                {
                    waiter.TryExpire();
                    break;
                }
            }
        }
        catch (AggregateException)
        {
            // Faulted or cancelled: EndWait tells which.
        }
    }

    /// <summary>The outcome of a finished wait: a connection or a reserved slot (null), or the right exception.</summary>
    public PooledConnection? EndWait(Waiter waiter, CancellationToken cancellationToken)
    {
        waiter.Cancellation.Dispose();
        var task = waiter.Task;
        if (task.IsCompletedSuccessfully)
            return waiter.Handed; // ours now: the caller uses it or gives it back
        if (task.IsFaulted)
            throw pool.ExhaustedException(null);
        if (cancellationToken.IsCancellationRequested)
            throw new OperationCanceledException("Opening the connection was cancelled.", cancellationToken);
        throw new ObjectDisposedException(nameof(CovetPool), $"Pool '{pool.Name}' was disposed while waiting for a connection.");
    }
}
