using Covet.Data.Pooling;

namespace Covet.Data;

/// <summary>
/// A view over every Covet pool in the process (one per data source, and one per connection string of each factory):
/// enumerate them, read their statistics, clear one or all. Pools are isolated from each other: each has its own slots,
/// waiters and circuit breaker, so exhausting one never affects another.
/// </summary>
public static class CovetPools
{
    /// <summary>Statistics of every live pool.</summary>
    public static IReadOnlyList<CovetPoolStatistics> GetStatistics() => CovetPoolRegistry.Snapshot().Select(p => p.GetStatistics()).ToList();

    /// <summary>Names of every live pool.</summary>
    public static IReadOnlyList<string> Names => CovetPoolRegistry.Snapshot().Select(p => p.Name).ToList();

    /// <summary>Statistics of the pools named <paramref name="poolName"/> (names are not required to be unique).</summary>
    public static IReadOnlyList<CovetPoolStatistics> GetStatistics(string poolName) =>
        CovetPoolRegistry.Snapshot().Where(p => p.Name == poolName).Select(p => p.GetStatistics()).ToList();

    /// <summary>Clears the pools named <paramref name="poolName"/>: idle connections close now, borrowed ones when returned. Returns how many pools matched.</summary>
    public static int Clear(string poolName)
    {
        var pools = CovetPoolRegistry.Snapshot().Where(p => p.Name == poolName).ToList();
        foreach (var pool in pools)
            pool.Clear();
        return pools.Count;
    }

    /// <summary>Clears every pool in the process.</summary>
    public static void ClearAll() => CovetDbConnection.ClearAllPools();
}
