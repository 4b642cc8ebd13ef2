using System.Runtime.CompilerServices;

namespace Covet.Data.Pooling;

/// <summary>
/// Runs the <see cref="Housekeeping"/> of every pool on one clock with one timer, visiting a pool only when it is due:
/// thousands of pools (a database per tenant) cost one timer and the visits they need, not a timer each firing every
/// second. There is one scheduler per <see cref="TimeProvider"/> — so one for the process on the real clock, and one per
/// fake clock in tests, where advancing the clock runs the visits that became due.
/// </summary>
/// <remarks>
/// Contract: <see cref="Schedule"/> may be called from any thread (pool creation, a checkout waking a parked pool,
/// reconfiguration); the due queue is guarded by the scheduler's own lock, never held while a pool is visited. Visits run
/// on the timer's thread one after another, never two at once (one pool's housekeeping never overlaps itself), and only
/// start background I/O. A pool's queue entry is stale once its <see cref="Housekeeping.ScheduledDue"/> moved on; stale
/// entries are skipped, so rescheduling never has to search the queue.
/// </remarks>
internal sealed class HousekeepingScheduler
{
    private static readonly ConditionalWeakTable<TimeProvider, HousekeepingScheduler> Schedulers = new();

    private readonly Lock _lock = new();
    private readonly PriorityQueue<(CovetPool Pool, long Due), long> _queue = new();  // guarded by _lock
    private readonly PoolClock _clock;
    private readonly ITimer _timer;
    private long _timerDue = long.MaxValue;   // guarded by _lock
    private int _running;                     // 0/1: a visit round is running (rounds never overlap)
    private int _again;                       // 0/1: something became due while a round ran

    private HousekeepingScheduler(TimeProvider time)
    {
        _clock = new PoolClock(time);
        // No caller's ExecutionContext: its AsyncLocals would live as long as the process.
        using (ExecutionContext.SuppressFlow())
            _timer = time.CreateTimer(static s => ((HousekeepingScheduler)s!).RunDue(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The scheduler of pools on <paramref name="time"/>.</summary>
    public static HousekeepingScheduler For(TimeProvider time) => Schedulers.GetValue(time, static t => new HousekeepingScheduler(t));

    /// <summary>Makes <paramref name="pool"/> due at <paramref name="due"/> (pool clock), or sooner if it already is.</summary>
    public void Schedule(CovetPool pool, long due)
    {
        lock (_lock)
        {
            var housekeeping = pool.Housekeeping;
            if (due >= housekeeping.ScheduledDue)
                return;
            housekeeping.ScheduledDue = due;
            _queue.Enqueue((pool, due), due);
            if (due < _timerDue)
                ArmLocked(due);
        }
    }

    private void ArmLocked(long due)
    {
        _timerDue = due;
        if (due == long.MaxValue)
            return;
        var now = _clock.Now();
        _timer.Change(due <= now ? TimeSpan.Zero : _clock.Elapsed(now, due), Timeout.InfiniteTimeSpan);
    }

    private void RunDue()
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            Volatile.Write(ref _again, 1); // the running round picks it up
            return;
        }
        try
        {
            do
            {
                Volatile.Write(ref _again, 0);
                RunRound();
            }
            while (Volatile.Read(ref _again) == 1);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    private void RunRound()
    {
        List<CovetPool>? due = null;
        var now = _clock.Now();
        lock (_lock)
        {
            _timerDue = long.MaxValue;
            while (_queue.TryPeek(out var entry, out var at) && at <= now)
            {
                _queue.Dequeue();
                if (entry.Pool.Housekeeping.ScheduledDue != entry.Due)
                    continue; // stale: rescheduled since
                entry.Pool.Housekeeping.ScheduledDue = long.MaxValue;
                (due ??= []).Add(entry.Pool);
            }
        }
        if (due is not null)
        {
            foreach (var pool in due)
            {
                var next = pool.Housekeeping.Run(now);
                if (next != long.MaxValue)
                    Schedule(pool, next);
            }
        }
        lock (_lock)
        {
            // Skip stale heads so the timer is armed for a real deadline.
            while (_queue.TryPeek(out var entry, out _) && entry.Pool.Housekeeping.ScheduledDue != entry.Due)
                _queue.Dequeue();
            ArmLocked(_queue.TryPeek(out _, out var next) ? next : long.MaxValue);
        }
    }
}
