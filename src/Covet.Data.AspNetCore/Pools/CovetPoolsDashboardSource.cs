namespace Covet.Data.AspNetCore.Pools;

/// <summary>
/// The dashboard over the public <see cref="CovetPools"/> API. Ids come from <see cref="CovetPoolStatistics.PoolId"/>;
/// holders and actions go by the pool's name, because that is how <see cref="CovetPools"/> addresses pools, so when two
/// pools share a name an action applies to both (the page says so).
/// </summary>
internal sealed class CovetPoolsDashboardSource : IDashboardPools
{
    // Resizing needs the core's reconfiguration API (issue 14), which has not landed yet: until it does it answers 501.
    internal const string ResizeUnavailable =
        "Resizing a running pool needs CovetPools.Reconfigure(poolName, options), which this version of Covet.Data does not have yet.";

    public IReadOnlyList<DashboardPool> List()
    {
        var all = CovetPools.GetStatistics();
        var byName = all.GroupBy(s => s.PoolName).ToDictionary(g => g.Key, g => g.Count());
        return all.OrderBy(s => s.PoolId).Select(s => new DashboardPool(s, s.State.ToString(), byName[s.PoolName])).ToList();
    }

    public IReadOnlyList<CovetCheckoutInfo> Holders(long poolId, int max) => CovetPools.GetHolders(NameOf(poolId), max);

    public int Clear(long poolId) => CovetPools.Clear(NameOf(poolId));

    public Task PauseAsync(long poolId, CancellationToken cancellationToken) => CovetPools.PauseAsync(NameOf(poolId), cancellationToken);

    public void Resume(long poolId) => CovetPools.Resume(NameOf(poolId));

    /// <summary>Drains every pool of the name together; the result adds up their reports (stragglers longest first).</summary>
    public async Task<DashboardDrainResult> DrainAsync(long poolId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var reports = await CovetPools.DrainAsync(NameOf(poolId), timeout, cancellationToken).ConfigureAwait(false);
        return new DashboardDrainResult(reports.Sum(r => r.Closed), reports.SelectMany(r => r.Stragglers).OrderByDescending(h => h.Held).ToList());
    }

    // Calls CovetPools.Reconfigure(name, options with new sizes) once the core has it (issue 14).
    public void Resize(long poolId, int minPoolSize, int maxPoolSize)
    {
        NameOf(poolId);
        throw new NotSupportedException(ResizeUnavailable);
    }

    private static string NameOf(long poolId) =>
        CovetPools.GetStatistics().FirstOrDefault(s => s.PoolId == poolId)?.PoolName ?? throw new DashboardPoolNotFoundException(poolId);
}
