using System.Diagnostics;
using Covet.Data.LoadTest.Scenarios;

namespace Covet.Data.LoadTest.Measurement;

/// <summary>
/// One sample of a run: the pool's own counts (from <see cref="CovetDataSource.GetStatistics"/> for Covet, from the
/// provider's meter for the provider's pool, null when unknown) and the load's view of itself: callers inside
/// <c>OpenAsync</c> (<see cref="Opening"/>) and callers holding a connection (<see cref="Holding"/>).
/// </summary>
public sealed record PoolSample(double Seconds, int? Total, int? Idle, int? InUse, int? Waiting, int Opening, int Holding, long Completed, long Failed);

/// <summary>Counters the workers update as they go (Interlocked), read by the sampler.</summary>
public sealed class WorkloadCounters
{
    public int Opening;
    public int Holding;
    public long Completed;
    public long Failed;
}

/// <summary>
/// Samples a pool every <c>interval</c> (~100 ms; ten times as often during the first second) on a dedicated thread, so the samples keep coming when the thread pool
/// is saturated (Microsoft.Data.Sqlite's "async" methods block their threads).
/// </summary>
public sealed class PoolSampler : IDisposable
{
    private readonly PoolUnderTest _pool;
    private readonly WorkloadCounters _counters;
    private readonly TimeSpan _interval;
    private readonly Action<PoolSample>? _onSample;
    private readonly List<PoolSample> _samples = [];
    private readonly ManualResetEventSlim _stop = new();
    private readonly Thread _thread;
    private long _start;

    public PoolSampler(PoolUnderTest pool, WorkloadCounters counters, TimeSpan interval, Action<PoolSample>? onSample)
    {
        _pool = pool;
        _counters = counters;
        _interval = interval;
        _onSample = onSample;
        _thread = new Thread(Loop) { IsBackground = true, Name = "pool sampler", Priority = ThreadPriority.AboveNormal };
    }

    /// <summary>Samples taken so far (complete once <see cref="Stop"/> returned).</summary>
    public IReadOnlyList<PoolSample> Samples => _samples;

    /// <summary>Starts sampling; times are relative to now.</summary>
    public void Start()
    {
        _start = Stopwatch.GetTimestamp();
        _thread.Start();
    }

    /// <summary>Takes a last sample and stops.</summary>
    public void Stop()
    {
        _stop.Set();
        _thread.Join();
    }

    private void Loop()
    {
        // The first second is sampled ten times as often, so that short runs (a few hundred milliseconds on a fast
        // machine) still draw a curve; after that, every interval.
        var fine = TimeSpan.FromTicks(Math.Max(_interval.Ticks / 10, TimeSpan.TicksPerMillisecond));
        do
            Take();
        while (!_stop.Wait(Stopwatch.GetElapsedTime(_start) < TimeSpan.FromSeconds(1) ? fine : _interval));
        Take();
    }

    private void Take()
    {
        var snapshot = _pool.Snapshot();
        var sample = new PoolSample(
            Stopwatch.GetElapsedTime(_start).TotalSeconds,
            snapshot?.Total, snapshot?.Idle, snapshot?.InUse, snapshot?.Waiting,
            Volatile.Read(ref _counters.Opening), Volatile.Read(ref _counters.Holding),
            Interlocked.Read(ref _counters.Completed), Interlocked.Read(ref _counters.Failed));
        _samples.Add(sample);
        _onSample?.Invoke(sample);
    }

    public void Dispose() => _stop.Dispose();
}
