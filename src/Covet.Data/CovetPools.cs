using Covet.Data.Pooling;

namespace Covet.Data;

/// <summary>
/// A view over every Covet pool in the process (one per data source, and one per connection string of each factory):
/// enumerate them, read their statistics and holders, clear one or all. Pools are isolated from each other: each has its
/// own slots, waiters and circuit breaker, so exhausting one never affects another.
/// </summary>
public static class CovetPools
{
    /// <summary>Statistics of every live pool, each with its process-unique <see cref="CovetPoolStatistics.PoolId"/>.</summary>
    public static IReadOnlyList<CovetPoolStatistics> GetStatistics() => CovetPoolRegistry.Snapshot().Select(PoolIdentity.StatisticsOf).ToList();

    /// <summary>Names of every live pool.</summary>
    public static IReadOnlyList<string> Names => CovetPoolRegistry.Snapshot().Select(p => p.Name).ToList();

    /// <summary>Statistics of the pools named <paramref name="poolName"/> (names are not required to be unique).</summary>
    public static IReadOnlyList<CovetPoolStatistics> GetStatistics(string poolName) =>
        CovetPoolRegistry.Snapshot().Where(p => p.Name == poolName).Select(PoolIdentity.StatisticsOf).ToList();

    /// <summary>
    /// The longest-held checkouts of the pools named <paramref name="poolName"/>, longest first: how long, on which thread,
    /// and the stack trace of the code that opened the connection (trimmed to the application's frames; null when none was
    /// captured, see <see cref="CovetPoolOptions.LeakStackTraces"/>). Stack traces name methods, never parameter values.
    /// </summary>
    /// <param name="poolName">The pool's name, as in <see cref="Names"/>.</param>
    /// <param name="max">At most this many checkouts (default 10).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="max"/> is negative.</exception>
    public static IReadOnlyList<CovetCheckoutInfo> GetHolders(string poolName, int max = 10)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(max);
        return CovetPoolRegistry.Snapshot()
            .Where(p => p.Name == poolName)
            .SelectMany(p => p.Holders(max))
            // A checkout that began after the pool read its clock shows a slightly negative time held: it was just taken.
            .Select(h => h.Held < TimeSpan.Zero ? h with { Held = TimeSpan.Zero } : h)
            .OrderByDescending(h => h.Held)
            .Take(max)
            .ToList();
    }

    /// <summary>Clears the pools named <paramref name="poolName"/>: idle connections close now, borrowed ones when returned. Returns how many pools matched.</summary>
    public static int Clear(string poolName)
    {
        var pools = CovetPoolRegistry.Snapshot().Where(p => p.Name == poolName).ToList();
        foreach (var pool in pools)
            pool.Clear();
        return pools.Count;
    }

    /// <summary>
    /// Pauses the pools named <paramref name="poolName"/> (see <see cref="CovetDataSource.PauseAsync"/>): new opens wait,
    /// borrowed connections keep working. Returns how many pools matched.
    /// </summary>
    /// <param name="poolName">The pool's name, as in <see cref="Names"/>.</param>
    /// <param name="cancellationToken">Checked before each pool is paused.</param>
    public static async Task<int> PauseAsync(string poolName, CancellationToken cancellationToken = default)
    {
        var paused = 0;
        foreach (var pool in Named(poolName))
        {
            try
            {
                await pool.Pausing.PauseAsync(cancellationToken).ConfigureAwait(false);
                paused++;
            }
            catch (ObjectDisposedException) when (pool.IsDisposed)
            {
                // disposed since the snapshot: not counted
            }
        }
        return paused;
    }

    /// <summary>Resumes the pools named <paramref name="poolName"/> (see <see cref="CovetDataSource.Resume"/>). Returns how many pools matched.</summary>
    /// <param name="poolName">The pool's name, as in <see cref="Names"/>.</param>
    public static int Resume(string poolName)
    {
        var pools = Named(poolName);
        foreach (var pool in pools)
            pool.Pausing.Resume();
        return pools.Count;
    }

    /// <summary>
    /// Drains the pools named <paramref name="poolName"/> together (see <see cref="CovetDataSource.DrainAsync"/>): each is
    /// paused, its idle connections close now and borrowed ones as they come back, until none is left or the timeout.
    /// </summary>
    /// <param name="poolName">The pool's name, as in <see cref="Names"/>.</param>
    /// <param name="timeout">How long to wait for borrowed connections (zero: close the idle ones and return).</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>One report per matched pool (empty when none matched).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    public static async Task<IReadOnlyList<CovetDrainReport>> DrainAsync(string poolName, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The drain timeout must be zero or more, or Timeout.InfiniteTimeSpan.");
        return await Task.WhenAll(Named(poolName).Select(p => p.Pausing.DrainAsync(timeout, cancellationToken))).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies <paramref name="options"/> to every running pool named <paramref name="poolName"/> (see
    /// <see cref="CovetDataSource.Reconfigure"/>). Each pool is checked before any is changed, so an invalid set changes none.
    /// </summary>
    /// <param name="poolName">The pool's name, as in <see cref="Names"/>.</param>
    /// <param name="options">The complete new settings (copied).</param>
    /// <returns>How many pools matched.</returns>
    /// <exception cref="CovetConfigurationException">A setting is out of range, or one that cannot change live differs for one of the pools; nothing was changed.</exception>
    public static int Reconfigure(string poolName, CovetPoolOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var pools = Named(poolName);
        foreach (var pool in pools)
            pool.Reconfiguration.Check(options);
        return pools.Count(pool => TryApply(pool, options));
    }

    /// <summary>
    /// Changes settings of every running pool named <paramref name="poolName"/>: <paramref name="change"/> edits a copy of each
    /// pool's options in force (so settings given by each pool's connection-string keywords are kept unless changed), which
    /// is then applied as by <see cref="CovetDataSource.Reconfigure"/>. Each pool is checked before any is changed.
    /// </summary>
    /// <param name="poolName">The pool's name, as in <see cref="Names"/>.</param>
    /// <param name="change">Edits the copy, e.g. <c>o => o.MaxPoolSize = 50</c>.</param>
    /// <returns>How many pools matched.</returns>
    /// <exception cref="CovetConfigurationException">The changed settings are invalid, or change one that cannot change live; nothing was changed.</exception>
    public static int Reconfigure(string poolName, Action<CovetPoolOptions> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        var pools = Named(poolName);
        var plans = pools.Select(pool =>
        {
            var options = pool.Options.Clone();
            change(options);
            return (Pool: pool, Options: pool.Reconfiguration.Check(options));
        }).ToList();
        return plans.Count(plan => TryApply(plan.Pool, plan.Options));
    }

    /// <summary>A pool disposed since the snapshot (it leaves the registry at the end of its disposal) is skipped, not counted.</summary>
    private static bool TryApply(CovetPool pool, CovetPoolOptions options)
    {
        try
        {
            pool.Reconfiguration.Apply(options);
            return true;
        }
        catch (ObjectDisposedException) when (pool.IsDisposed)
        {
            return false;
        }
    }

    private static List<CovetPool> Named(string poolName) => CovetPoolRegistry.Snapshot().Where(p => p.Name == poolName && !p.IsDisposed).ToList();

    /// <summary>Clears every pool in the process.</summary>
    public static void ClearAll() => CovetDbConnection.ClearAllPools();
}
