using Covet.Data.Pooling;

namespace Covet.Data.Diagnostics;

/// <summary>
/// One pool's latency statistics (acquire, use and create time) and the snapshot users read
/// (<see cref="CovetPoolStatistics"/>), plus the report of an exhausted pool.
/// </summary>
/// <remarks>
/// <para>What the checkout path pays: a checkout that took the fast path waited for nothing, so it is counted, not timed:
/// one plain increment of a counter of its own slot (only the slot's owner writes it, so it needs no atomic), merged into
/// the acquire-time histogram's lowest bucket (under 100 ns, which the fast path takes) when a snapshot is read. Use time is
/// timed on the precise clock for checkouts sampled at most once per tick of the coarse clock (a millisecond), so a quiet
/// pool has every checkout timed and a busy one a thousand a second: percentiles of a sample taken independently of the
/// use durations, at a cost of two clock reads a millisecond instead of two per checkout. With a fake clock every checkout
/// is timed.</para>
/// <para>Contract: recording is lock-free (histograms use <see cref="Interlocked"/>); <see cref="Snapshot"/> takes the
/// pool lock only for the counts, so they are consistent with each other.</para>
/// </remarks>
internal sealed class PoolStatistics(CovetPool pool)
{
    private readonly LatencyHistogram _acquireTime = new();  // slow-path checkouts, timed
    private readonly LatencyHistogram _useTime = new();      // sampled checkouts, timed
    private readonly LatencyHistogram _createTime = new();
    private long _retiredFastCheckouts;                      // fast checkouts of slots already closed (Interlocked)
    private long _lastUseSample = long.MinValue;             // coarse tick of the last sampled checkout (racy on purpose)
    private long _lastExhaustedLog = long.MinValue;

    /// <summary>Whether the checkout at <paramref name="now"/> (pool clock) is timed precisely for use-time statistics.</summary>
    public bool SampleUse(long now)
    {
        if (!pool.Clock.IsCoarse)
            return true;
        if (now == Volatile.Read(ref _lastUseSample))
            return false;
        Volatile.Write(ref _lastUseSample, now); // two callers in one tick may both sample: harmless
        return true;
    }

    /// <summary>Records a slow-path checkout (its acquire time from <paramref name="start"/>, precise clock) and lends the slot.</summary>
    public long CheckOut(PooledConnection connection, object borrower, Health.CheckoutSite site, long start)
    {
        RecordAcquire(pool.Clock.Time.GetElapsedTime(start));
        return Lend(connection, borrower, site, pool.Clock.Now());
    }

    /// <summary>Records a fast-path checkout (it waited for nothing: counted on its slot, not timed) and lends the slot.</summary>
    public long CheckOutFast(PooledConnection connection, object borrower, Health.CheckoutSite site, long now)
    {
        connection.FastCheckouts++; // only the slot's owner (the caller) writes it
        if (CovetMetrics.WaitTime.Enabled)
            CovetMetrics.WaitTime.Record(0, CovetMetrics.PoolTag(pool));
        return Lend(connection, borrower, site, now);
    }

    private long Lend(PooledConnection connection, object borrower, Health.CheckoutSite site, long now) =>
        connection.Lend(borrower, site, now, SampleUse(now) || CovetMetrics.UseTime.Enabled ? pool.Clock.Precise() : 0);

    private void RecordAcquire(TimeSpan waited)
    {
        _acquireTime.Record(waited);
        if (CovetMetrics.WaitTime.Enabled)
            CovetMetrics.WaitTime.Record(waited.TotalSeconds, CovetMetrics.PoolTag(pool));
    }

    public void RecordUse(TimeSpan held)
    {
        _useTime.Record(held);
        if (CovetMetrics.UseTime.Enabled)
            CovetMetrics.UseTime.Record(held.TotalSeconds, CovetMetrics.PoolTag(pool));
    }

    public void RecordCreate(TimeSpan elapsed)
    {
        _createTime.Record(elapsed);
        if (CovetMetrics.CreateTime.Enabled)
            CovetMetrics.CreateTime.Record(elapsed.TotalSeconds, CovetMetrics.PoolTag(pool));
    }

    /// <summary>A slot leaves the pool's list: its fast-checkout count moves to the pool's. Under the pool lock, so a snapshot counts it once.</summary>
    public void OnSlotRetiredLocked(PooledConnection connection) => Interlocked.Add(ref _retiredFastCheckouts, connection.FastCheckouts);

    public CovetPoolStatistics Snapshot()
    {
        int total, idle, waiting;
        CovetPoolState state;
        long fast = Interlocked.Read(ref _retiredFastCheckouts);
        lock (pool.Gate)
        {
            total = pool.Total;
            idle = pool.Idle.Count;
            waiting = pool.Waiters.Count;
            state = pool.State;
            foreach (var c in pool.Slots)
                fast += Volatile.Read(ref c.FastCheckouts);
        }
        var counters = pool.Counters;
        return new CovetPoolStatistics
        {
            PoolName = pool.Name,
            Total = total,
            Idle = idle,
            InUse = total - idle,
            Waiting = waiting,
            MinPoolSize = pool.Options.MinPoolSize,
            MaxPoolSize = pool.Options.MaxPoolSize,
            Checkouts = _acquireTime.Count + fast,
            AcquireP50 = _acquireTime.Percentile(50, fast),
            AcquireP95 = _acquireTime.Percentile(95, fast),
            AcquireP99 = _acquireTime.Percentile(99, fast),
            AcquireMax = _acquireTime.Max,
            UseP50 = _useTime.Percentile(50),
            UseP95 = _useTime.Percentile(95),
            UseP99 = _useTime.Percentile(99),
            ConnectionsCreated = Interlocked.Read(ref counters.ConnectionsCreated),
            ConnectionsDestroyed = Interlocked.Read(ref counters.ConnectionsDestroyed),
            ConnectionFailures = Interlocked.Read(ref counters.ConnectionFailures),
            PrePingFailures = Interlocked.Read(ref counters.PrePingFailures),
            HealthCheckFailures = Interlocked.Read(ref counters.HealthCheckFailures),
            ResetFailures = Interlocked.Read(ref counters.ResetFailures),
            AcquireTimeouts = Interlocked.Read(ref counters.AcquireTimeouts),
            SuspectedLeaks = pool.Leaks.SuspectedCount(pool.Clock.Now()),
            LeaksDetected = Interlocked.Read(ref counters.LeaksDetected),
            LeaksReclaimed = Interlocked.Read(ref counters.LeaksReclaimed),
            ForgottenConnections = Interlocked.Read(ref counters.ForgottenConnections),
            CircuitRejections = pool.Breaker.Rejections,
            CircuitState = pool.Breaker.State,
            State = state,
            WarmTarget = Math.Max(pool.Options.MinPoolSize, pool.Sizer.WarmTarget),
        };
    }

    /// <summary>The error for an acquire that timed out: counts, the longest holders with their stack traces, which setting to raise.</summary>
    public CovetPoolExhaustedException Exhausted(string? detail, Exception? inner)
    {
        Interlocked.Increment(ref pool.Counters.AcquireTimeouts);
        var stats = Snapshot();
        var holders = pool.Leaks.Holders(5);
        var holdersText = holders.Count == 0
            ? "   (none)"
            : string.Join("\n", holders.Select((h, i) =>
                $"  #{i + 1} held {h.Held.TotalSeconds:F1} s by thread {h.ThreadId}{(h.ThreadName is null ? "" : $" ({h.ThreadName})")}, opened at:\n{h.StackTrace ?? Health.CheckoutStackTrace.NotCaptured}"));
        // One log entry per episode, not one per rejected caller: at most one a second.
        var now = pool.Clock.Precise();
        var last = Volatile.Read(ref _lastExhaustedLog);
        if ((last == long.MinValue || pool.Clock.Time.GetElapsedTime(last, now) >= TimeSpan.FromSeconds(1)) && Interlocked.CompareExchange(ref _lastExhaustedLog, now, last) == last)
            CovetLog.PoolExhausted(pool.Logger, pool.Name, pool.Options.AcquireTimeout.TotalSeconds, stats.Total, stats.Idle, stats.InUse, stats.Waiting, stats.MaxPoolSize, holdersText);
        // A paused pool makes every open wait on purpose: say so first, it is not a sizing problem.
        var paused = stats.State switch
        {
            CovetPoolState.Paused => " because the pool is paused (PauseAsync; Resume serves the waiters)",
            CovetPoolState.Draining => " because the pool is paused while it drains (DrainAsync; Resume serves the waiters)",
            _ => "",
        };
        var message =
            $"Pool '{pool.Name}': timed out after {pool.Options.AcquireTimeout.TotalSeconds:F1} s waiting for a connection{paused}" +
            (detail is null ? "" : $" ({detail})") +
            $". Total {stats.Total}, idle {stats.Idle}, in use {stats.InUse}, waiting {stats.Waiting}, max {stats.MaxPoolSize}. " +
            "Raise MaxPoolSize (Covet.MaxPoolSize) or AcquireTimeout (Covet.AcquireTimeout), or find the code holding connections too long. " +
            $"Longest-held checkouts:\n{holdersText}";
        return new CovetPoolExhaustedException(message, inner) { PoolName = pool.Name, Holders = holders };
    }
}
