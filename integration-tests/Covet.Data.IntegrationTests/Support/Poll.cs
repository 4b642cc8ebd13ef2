using System.Diagnostics;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Waiting for something another thread or the server does (a background reset, a backend exiting, a finalizer's
/// recovery): poll a condition in short steps, bounded in real time. Never a fixed multi-second sleep.
/// </summary>
internal static class Poll
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeout);

    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var bound = timeout ?? DefaultTimeout;
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > bound)
            {
                if (await condition())
                    return;
                Assert.Fail($"Timed out after {bound.TotalSeconds:F0} s waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Polls <paramref name="read"/> until <paramref name="done"/> holds; returns the last value read.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        var bound = timeout ?? DefaultTimeout;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var value = await read();
            if (done(value))
                return value;
            if (clock.Elapsed > bound)
                Assert.Fail($"Timed out after {bound.TotalSeconds:F0} s waiting for: {what} (last value: {value})");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until no connection of the pool is borrowed or being reset (the reset after Close runs in the background).</summary>
    public static async Task<CovetPoolStatistics> UntilNothingInUseAsync(CovetDataSource dataSource)
    {
        var stats = await ValueAsync(() => Task.FromResult(dataSource.GetStatistics()), s => s.InUse == 0,
            $"pool {dataSource.PoolName} to have nothing in use");
        Assert.AreEqual(stats.Total, stats.Idle + stats.InUse, $"Total == Idle + InUse: {stats}");
        return stats;
    }
}
