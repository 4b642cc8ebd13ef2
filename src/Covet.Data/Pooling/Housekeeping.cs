using Covet.Data.Diagnostics;
using Covet.Data.Resilience;

namespace Covet.Data.Pooling;

/// <summary>
/// One pool's background work, run by the process's <see cref="HousekeepingScheduler"/> each time it is due (every
/// <see cref="CovetPoolOptions.MaintenanceInterval"/> while the pool is in use): the leak watch, idle-timeout and
/// max-lifetime eviction (never below the minimum), demand-driven sizing, the periodic health check of idle connections,
/// warm-up to the minimum, and while the circuit is open, one background probe per visit. While the pool is paused or
/// draining (see <see cref="Pausing"/>) it opens nothing: no warm-up, growth, health check or probe; eviction and the
/// leak watch go on.
/// </summary>
/// <remarks>
/// <para>Contract: <see cref="Run"/> is called only by the scheduler, never concurrently with itself for one pool; it
/// takes the pool lock for field work only and starts I/O (pings, opens) in the background.</para>
/// <para>A quiet pool — every slot idle, no one waiting, the breaker closed, at its warm size — has nothing to do until
/// its next eviction, expiry or health check, so <see cref="Run"/> parks it until then instead of visiting it every
/// interval: an application with a database per tenant has thousands of such pools. Parking is decided under the pool
/// lock, and every checkout from the idle stack passes through that lock, where it finds the pool parked and wakes it
/// (<see cref="CovetPool.Gate"/> orders the two), so a borrowed connection is never left unwatched.</para>
/// </remarks>
internal sealed class Housekeeping(CovetPool pool)
{
    private long _lastHealthCheck = pool.Clock.Now();
    private int _probing;                             // 0/1: at most one circuit probe in flight
    private int _backgroundHeld;                      // idle connections out for a health check: not demand either

    /// <summary>The scheduler's bookkeeping: when this pool is due next (pool clock); written only by the scheduler.</summary>
    public long ScheduledDue = long.MaxValue;

    /// <summary>Idle connections out for a health check.</summary>
    public int BackgroundHeld => Volatile.Read(ref _backgroundHeld);

    /// <summary>One visit. Returns when the pool is due next (pool clock), or long.MaxValue when it is disposed.</summary>
    public long Run(long now)
    {
        if (pool.IsDisposed)
            return long.MaxValue;
        try
        {
            pool.Leaks.Watch(now);
            EvictIdle(now);
            Resize(now);
            if (pool.State != CovetPoolState.Running)
                return NextDue(now); // paused: nothing that opens a connection (Resume wakes the pool)
            var options = pool.Options;
            if (options.HealthCheckInterval > TimeSpan.Zero && pool.Clock.Elapsed(_lastHealthCheck, now) >= options.HealthCheckInterval)
            {
                _lastHealthCheck = now;
                _ = CheckIdleHealthAsync();
            }
            if (pool.Breaker.State != CovetCircuitState.Closed)
                _ = ProbeAsync();
            else
                pool.Connections.WarmUp();
        }
        catch (Exception e)
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogError(pool.Logger, e, "Pool {PoolName}: maintenance failed", pool.Name);
        }
        return NextDue(now);
    }

    /// <summary>When the pool must be visited next: one interval from now while anything may need it, else its next deadline (parked).</summary>
    private long NextDue(long now)
    {
        var options = pool.Options;
        var next = now + pool.Clock.Units(options.MaintenanceInterval);
        if (pool.Breaker.State != CovetCircuitState.Closed || Volatile.Read(ref _probing) != 0 || BackgroundHeld != 0 || pool.Connections.Warming != 0)
            return next;
        var warm = Math.Max(options.MinPoolSize, pool.Sizer.WarmTarget);
        var idleTimeout = options.IdleTimeout > TimeSpan.Zero && options.IdleTimeout != Timeout.InfiniteTimeSpan ? pool.Clock.Units(options.IdleTimeout) : long.MaxValue;
        var state = (Due: long.MaxValue, IdleTimeout: idleTimeout);
        lock (pool.Gate)
        {
            if (pool.Disposed)
                return long.MaxValue;
            var total = pool.Total;
            if (total != pool.Idle.Count || pool.Waiters.Count != 0 || total < options.MinPoolSize || (options.AutoScale && total > Math.Max(1, options.MinPoolSize)))
                return next; // in use, waited for, warming up, or the sizer may still shrink it (down to one, or the minimum): visit every interval
            state.IdleTimeout = total > warm ? idleTimeout : long.MaxValue;
            pool.Idle.ForEach(ref state, static (PooledConnection c, ref (long Due, long IdleTimeout) s) =>
            {
                s.Due = Math.Min(s.Due, c.ExpiresAt);
                if (s.IdleTimeout != long.MaxValue)
                    s.Due = Math.Min(s.Due, c.IdleSince + s.IdleTimeout);
                return true;
            });
            if (options.HealthCheckInterval > TimeSpan.Zero && total > 0)
                state.Due = Math.Min(state.Due, _lastHealthCheck + pool.Clock.Units(options.HealthCheckInterval));
            pool.Parked = true;
        }
        return Math.Max(next, state.Due);
    }

    /// <summary>Closes idle connections past their lifetime, and idle ones above the minimum past the idle timeout.</summary>
    private void EvictIdle(long now)
    {
        var options = pool.Options;
        List<PooledConnection> evicted;
        lock (pool.Gate)
        {
            var idleTimeout = options.IdleTimeout > TimeSpan.Zero && options.IdleTimeout != Timeout.InfiniteTimeSpan ? pool.Clock.Units(options.IdleTimeout) : long.MaxValue;
            // Coldest first; idle timeout never takes the pool below its warm size (the minimum, or what the sizer keeps).
            var state = (Now: now, Total: pool.Total, Keep: Math.Max(options.MinPoolSize, pool.Sizer.WarmTarget), IdleTimeout: idleTimeout);
            evicted = pool.Idle.TakeWhere(ref state, static (PooledConnection c, ref (long Now, int Total, int Keep, long IdleTimeout) s) =>
            {
                var evict = c.HasExpired(s.Now) || (s.Total > s.Keep && s.IdleTimeout != long.MaxValue && s.Now - c.IdleSince >= s.IdleTimeout);
                if (evict)
                    s.Total--;
                return evict;
            });
        }
        foreach (var c in evicted)
            pool.Destroy(c, c.HasExpired(now) ? "max lifetime reached" : "idle timeout");
    }

    /// <summary>Demand-driven sizing: grows the warm set in the background, or lets the coldest idle connections go.</summary>
    private void Resize(long now)
    {
        if (pool.Breaker.State != CovetCircuitState.Closed)
            return;
        int total, idle;
        lock (pool.Gate)
        {
            total = pool.Total;
            idle = pool.Idle.Count;
        }
        // Slots being opened or closed in the background are neither idle nor demand: counting them as in use would make
        // warm-up or a slow close look like load and grow the pool further.
        var delta = pool.Sizer.Evaluate(now, total, Math.Max(0, total - idle - pool.Connections.Warming - pool.Connections.Closing - BackgroundHeld));
        if (delta > 0)
        {
            lock (pool.Gate)
            {
                if (pool.Disposed || pool.State != CovetPoolState.Running)
                    return; // paused: no growth
                delta = Math.Max(0, Math.Min(delta, pool.Options.MaxPoolSize - pool.Total));
                pool.Total += delta; // reserve the slots, as warm-up does
            }
            pool.Connections.WarmInBackground(delta);
        }
        else if (delta < 0)
        {
            List<PooledConnection> surplus;
            var left = -delta;
            lock (pool.Gate)
                surplus = pool.Idle.TakeWhere(ref left, static (PooledConnection _, ref int n) => n-- > 0);
            foreach (var c in surplus)
                pool.Destroy(c, "demand-driven shrink");
        }
    }

    /// <summary>Pings idle connections not used since the last check; removes the dead and refills to the minimum.</summary>
    private async Task CheckIdleHealthAsync()
    {
        List<PooledConnection> toCheck;
        var now = pool.Clock.Now();
        var interval = pool.Clock.Units(pool.Options.HealthCheckInterval);
        var state = (Now: now, Interval: interval);
        lock (pool.Gate)
            toCheck = pool.Idle.TakeWhere(ref state, static (PooledConnection c, ref (long Now, long Interval) s) => s.Now - c.LastUsedAt >= s.Interval); // out of the idle set while we test them
        Interlocked.Add(ref _backgroundHeld, toCheck.Count);
        foreach (var c in toCheck)
        {
            var epoch = pool.Validation.Epoch;
            bool alive;
            try
            {
                alive = await pool.Dialect.PingAsync(c.Physical, pool.Options, pool.Options.ValidationTimeout, async: true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception)
            {
                alive = false;
            }
            if (alive)
            {
                c.LastUsedAt = pool.Clock.Now();
                c.VerifiedEpoch = epoch;
                pool.MakeAvailable(c);
            }
            else
            {
                Interlocked.Increment(ref pool.Counters.HealthCheckFailures);
                CovetLog.HealthCheckFailed(pool.Logger, pool.Name, c.Id);
                pool.Destroy(c, "health check failed");
            }
            Interlocked.Decrement(ref _backgroundHeld);
        }
        pool.Connections.WarmUp();
    }

    /// <summary>While the circuit is not closed, one background attempt per visit: success closes it before any caller has to try.</summary>
    private async Task ProbeAsync()
    {
        if (Interlocked.Exchange(ref _probing, 1) == 1)
            return; // one probe at a time, however long a black-holed connect takes
        if (!pool.Connections.TryReserveSlot())
        {
            Volatile.Write(ref _probing, 0);
            return;
        }
        try
        {
            // The next probe waits until this one's slot has settled (see TryOpenForProbeAsync).
            await pool.Connections.TryOpenForProbeAsync(() => Volatile.Write(ref _probing, 0)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Volatile.Write(ref _probing, 0);
            Microsoft.Extensions.Logging.LoggerExtensions.LogError(pool.Logger, e, "Pool {PoolName}: circuit probe failed unexpectedly", pool.Name);
        }
    }
}
