namespace Covet.Data.AspNetCore.Pools;

/// <summary>
/// Everything the dashboard reads from and does to pools, behind one seam: the default implementation
/// (<see cref="CovetPoolsDashboardSource"/>) is the public <see cref="CovetPools"/> API; tests put a double here.
/// Methods taking a pool id throw <see cref="DashboardPoolNotFoundException"/> for an id no live pool has (answered 404),
/// and <see cref="CovetConfigurationException"/> or <see cref="ArgumentException"/> for a value the pool refuses (answered 400).
/// </summary>
internal interface IDashboardPools
{
    /// <summary>Every live pool, in a stable order.</summary>
    IReadOnlyList<DashboardPool> List();

    /// <summary>The longest-held checkouts of the pool, longest first.</summary>
    IReadOnlyList<CovetCheckoutInfo> Holders(long poolId, int max);

    /// <summary>Closes the pool's idle connections now, borrowed ones when returned. Returns how many pools it applied to.</summary>
    int Clear(long poolId);

    /// <summary>Stops new checkouts (they wait); completes once the pool is paused.</summary>
    Task PauseAsync(long poolId, CancellationToken cancellationToken);

    /// <summary>Lets waiters and new checkouts proceed again.</summary>
    void Resume(long poolId);

    /// <summary>Pauses, closes idle connections now and borrowed ones as they return, until none is left or the timeout passes.</summary>
    Task<DashboardDrainResult> DrainAsync(long poolId, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>
    /// Applies a new minimum and maximum size to the running pool (to every pool of its name). Returns how many pools it
    /// applied to. Throws <see cref="CovetConfigurationException"/> naming the setting for sizes the pool refuses.
    /// </summary>
    int Resize(long poolId, int minPoolSize, int maxPoolSize);
}

/// <summary>One pool as the dashboard shows it.</summary>
/// <param name="Statistics">Its statistics; <see cref="CovetPoolStatistics.PoolId"/> identifies it.</param>
/// <param name="State">"Running", "Paused" or "Draining".</param>
/// <param name="PoolsSharingName">How many live pools have this name (actions by name apply to all of them).</param>
internal sealed record DashboardPool(CovetPoolStatistics Statistics, string State, int PoolsSharingName);

/// <summary>What a drain did.</summary>
internal sealed record DashboardDrainResult(int Closed, IReadOnlyList<CovetCheckoutInfo> Stragglers);

/// <summary>No live pool has the id.</summary>
internal sealed class DashboardPoolNotFoundException(long poolId) : Exception($"No live pool has id {poolId}.")
{
    public long PoolId { get; } = poolId;
}
