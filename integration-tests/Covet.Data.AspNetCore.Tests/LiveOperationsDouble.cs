using System.Collections.Concurrent;
using Covet.Data.AspNetCore.Pools;

namespace Covet.Data.AspNetCore.Tests;

/// <summary>
/// The real pool source (<see cref="CovetPoolsDashboardSource"/>: real pools, real holders, real Clear and Resize) with the
/// other live operations (pause, resume, drain) recorded instead of performed: it lets the tests drive the dashboard's
/// action path end to end without changing a real pool's state.
/// The real pause, resume, drain and resize are tested through <see cref="CovetPoolsDashboardSource"/> itself.
/// </summary>
internal sealed class LiveOperationsDouble : IDashboardPools
{
    private readonly CovetPoolsDashboardSource _real = new();
    private readonly ConcurrentDictionary<long, string> _states = new();
    public ConcurrentQueue<string> Calls { get; } = new();

    public IReadOnlyList<DashboardPool> List() =>
        _real.List().Select(p => p with { State = _states.GetValueOrDefault(p.Statistics.PoolId, p.State) }).ToList();

    public IReadOnlyList<CovetCheckoutInfo> Holders(long poolId, int max) => _real.Holders(poolId, max);

    public int Clear(long poolId)
    {
        Calls.Enqueue($"clear {poolId}");
        return _real.Clear(poolId);
    }

    public Task PauseAsync(long poolId, CancellationToken cancellationToken)
    {
        Require(poolId);
        Calls.Enqueue($"pause {poolId}");
        _states[poolId] = "Paused";
        return Task.CompletedTask;
    }

    public void Resume(long poolId)
    {
        Require(poolId);
        Calls.Enqueue($"resume {poolId}");
        _states[poolId] = "Running";
    }

    public Task<DashboardDrainResult> DrainAsync(long poolId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Require(poolId);
        Calls.Enqueue($"drain {poolId} {timeout.TotalSeconds}");
        _states[poolId] = "Paused";
        return Task.FromResult(new DashboardDrainResult(2, Holders(poolId, 10)));
    }

    public int Resize(long poolId, int minPoolSize, int maxPoolSize)
    {
        // Performed on the real pool (it changes nothing but its sizes), recorded once it succeeded.
        var affected = _real.Resize(poolId, minPoolSize, maxPoolSize);
        Calls.Enqueue($"resize {poolId} {minPoolSize}..{maxPoolSize}");
        return affected;
    }

    private void Require(long poolId)
    {
        if (!_real.List().Any(p => p.Statistics.PoolId == poolId))
            throw new DashboardPoolNotFoundException(poolId);
    }
}
