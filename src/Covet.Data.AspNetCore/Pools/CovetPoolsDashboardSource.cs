namespace Covet.Data.AspNetCore.Pools;

/// <summary>
/// The dashboard over the public <see cref="CovetPools"/> API. Ids come from <see cref="CovetPoolStatistics.PoolId"/>;
/// holders and actions go by the pool's name, because that is how <see cref="CovetPools"/> addresses pools, so when two
/// pools share a name an action applies to both (the page says so).
/// </summary>
internal sealed class CovetPoolsDashboardSource : IDashboardPools
{
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

    /// <summary>
    /// New sizes for every pool of the name, each keeping the rest of its own options in force (its connection-string
    /// keywords, a reload's values); the core checks every pool before changing any, so an invalid size changes none and
    /// its <see cref="CovetConfigurationException"/> names the setting.
    /// </summary>
    public int Resize(long poolId, int minPoolSize, int maxPoolSize) =>
        CovetPools.Reconfigure(NameOf(poolId), o =>
        {
            o.MinPoolSize = minPoolSize;
            o.MaxPoolSize = maxPoolSize;
        });

    private static string NameOf(long poolId) =>
        CovetPools.GetStatistics().FirstOrDefault(s => s.PoolId == poolId)?.PoolName ?? throw new DashboardPoolNotFoundException(poolId);
}
