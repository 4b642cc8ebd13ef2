namespace Covet.Data.AspNetCore.Pools;

/// <summary>
/// The dashboard over the public <see cref="CovetPools"/> API. Ids come from <see cref="CovetPoolStatistics.PoolId"/>;
/// holders and actions go by the pool's name, because that is how <see cref="CovetPools"/> addresses pools, so when two
/// pools share a name an action applies to both (the page says so).
/// </summary>
internal sealed class CovetPoolsDashboardSource : IDashboardPools
{
    // The messages of the operations that need the core's live-operations API (issue 14): until it lands they answer 501.
    internal const string PauseUnavailable =
        "Pausing a pool needs CovetPools.PauseAsync(poolName), which this version of Covet.Data does not have yet.";
    internal const string ResumeUnavailable =
        "Resuming a pool needs CovetPools.Resume(poolName), which this version of Covet.Data does not have yet.";
    internal const string DrainUnavailable =
        "Draining a pool needs CovetPools.DrainAsync(poolName, timeout), which this version of Covet.Data does not have yet.";
    internal const string ResizeUnavailable =
        "Resizing a running pool needs CovetPools.Reconfigure(poolName, options), which this version of Covet.Data does not have yet.";

    public IReadOnlyList<DashboardPool> List()
    {
        var all = CovetPools.GetStatistics();
        var byName = all.GroupBy(s => s.PoolName).ToDictionary(g => g.Key, g => g.Count());
        // "Running" until CovetPoolStatistics carries the core's CovetPoolState { Running, Paused, Draining }:
        // then this becomes s.State.ToString().
        return all.OrderBy(s => s.PoolId).Select(s => new DashboardPool(s, "Running", byName[s.PoolName])).ToList();
    }

    public IReadOnlyList<CovetCheckoutInfo> Holders(long poolId, int max) => CovetPools.GetHolders(NameOf(poolId), max);

    public int Clear(long poolId) => CovetPools.Clear(NameOf(poolId));

    // The four below call the core API planned in issue 14 once it exists:
    //   await CovetPools.PauseAsync(name); CovetPools.Resume(name);
    //   CovetPools.DrainAsync(name, timeout, ct) -> CovetDrainReport; CovetPools.Reconfigure(name, options with new sizes).
    public Task PauseAsync(long poolId, CancellationToken cancellationToken)
    {
        NameOf(poolId);
        throw new NotSupportedException(PauseUnavailable);
    }

    public void Resume(long poolId)
    {
        NameOf(poolId);
        throw new NotSupportedException(ResumeUnavailable);
    }

    public Task<DashboardDrainResult> DrainAsync(long poolId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        NameOf(poolId);
        throw new NotSupportedException(DrainUnavailable);
    }

    public void Resize(long poolId, int minPoolSize, int maxPoolSize)
    {
        NameOf(poolId);
        throw new NotSupportedException(ResizeUnavailable);
    }

    private static string NameOf(long poolId) =>
        CovetPools.GetStatistics().FirstOrDefault(s => s.PoolId == poolId)?.PoolName ?? throw new DashboardPoolNotFoundException(poolId);
}
