using System.Collections.Concurrent;
using Covet.Data.AspNetCore.Pools;

namespace Covet.Data.AspNetCore.History;

/// <summary>
/// Samples every pool once per <see cref="CovetDashboardOptions.SampleInterval"/> into a bounded history per pool. It exists
/// only when the dashboard is mapped and runs only while the host runs (started on ApplicationStarted, stopped on
/// ApplicationStopping), so pools pay nothing for the dashboard otherwise; when it runs, a tick costs each pool one
/// <see cref="CovetPools.GetStatistics()"/> (the pool lock taken briefly), never anything on the checkout path.
/// </summary>
internal sealed class PoolHistorySampler(IDashboardPools pools, CovetDashboardOptions options) : IDisposable
{
    private readonly ConcurrentDictionary<long, PoolHistory> _histories = new();
    private readonly Lock _gate = new();
    private ITimer? _timer;
    private int _ticking;   // 0/1: a slow tick is skipped, never overlapped, so each history has one writer
    private bool _disposed;

    public void Start()
    {
        lock (_gate)
        {
            if (_timer is not null || _disposed)
                return;
            Tick();   // the first sample at once, so a page opened right after start has a point to draw
            // No caller's AsyncLocals kept alive by the timer.
            using (ExecutionContext.SuppressFlow())
                _timer = options.TimeProvider.CreateTimer(static s => ((PoolHistorySampler)s!).Tick(), this, options.SampleInterval, options.SampleInterval);
        }
    }

    /// <summary>The history of the pool, or null when it has not been sampled yet.</summary>
    public PoolHistory? For(long poolId) => _histories.GetValueOrDefault(poolId);

    /// <summary>Takes one sample of every pool now (the timer calls this; so can tests).</summary>
    internal void Tick()
    {
        if (Interlocked.Exchange(ref _ticking, 1) == 1)
            return;
        try
        {
            var now = options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
            var live = new HashSet<long>();
            foreach (var pool in pools.List())
            {
                var s = pool.Statistics;
                live.Add(s.PoolId);
                _histories.GetOrAdd(s.PoolId, static (_, capacity) => new PoolHistory(capacity), options.HistoryLength)
                    .Add(new PoolSample(now, s.InUse, s.Idle, s.Waiting, s.Total, s.MaxPoolSize,
                        s.AcquireP50.TotalMilliseconds, s.AcquireP99.TotalMilliseconds, s.AcquireTimeouts));
            }
            // Disposed pools' histories go with them.
            foreach (var id in _histories.Keys)
                if (!live.Contains(id))
                    _histories.TryRemove(id, out _);
        }
        catch
        {
            // A failing tick (a pool disposed mid-read) must not kill the timer; the next tick samples again.
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _timer?.Dispose();
            _timer = null;
        }
    }
}
