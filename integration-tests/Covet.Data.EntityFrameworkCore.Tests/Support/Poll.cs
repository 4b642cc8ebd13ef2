using System.Diagnostics;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>Waits for something another thread or the server does, in short steps, bounded in real time.</summary>
internal static class Poll
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

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
}
