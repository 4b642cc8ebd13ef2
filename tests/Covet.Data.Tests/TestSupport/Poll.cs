using System.Diagnostics;

namespace Covet.Data.Tests.TestSupport;

/// <summary>
/// The one place where tests wait for something that happens on another thread (a background reset, warm-up,
/// a finalizer's recovery): poll a condition in short steps, bounded in real time.
/// </summary>
internal static class Poll
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Waits until <paramref name="condition"/> holds; fails the test with <paramref name="what"/> after the bound.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        if (!await TryUntilAsync(condition, timeout).ConfigureAwait(false))
            Assert.Fail($"Timed out after {(timeout ?? DefaultTimeout).TotalSeconds:F0} s waiting for: {what}");
    }

    /// <summary>Waits until <paramref name="condition"/> holds or the bound passes; returns whether it held.</summary>
    public static async Task<bool> TryUntilAsync(Func<bool> condition, TimeSpan? timeout = null)
    {
        var bound = Stopwatch.StartNew();
        while (true)
        {
            if (condition())
                return true;
            if (bound.Elapsed > (timeout ?? DefaultTimeout))
                return condition();
            await Task.Delay(5).ConfigureAwait(false);
        }
    }

    /// <summary>Blocking variant for synchronous tests (and for when the thread pool must not be needed).</summary>
    public static void Until(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var bound = Stopwatch.StartNew();
        while (!condition())
        {
            if (bound.Elapsed > (timeout ?? DefaultTimeout))
            {
                if (condition())
                    return;
                Assert.Fail($"Timed out after {(timeout ?? DefaultTimeout).TotalSeconds:F0} s waiting for: {what}");
            }
            Thread.Sleep(5);
        }
    }

    /// <summary>Whether <paramref name="task"/> completes within the bound (it is not awaited: its outcome is the caller's).</summary>
    public static async Task<bool> CompletesAsync(Task task, TimeSpan? timeout = null)
    {
        await Task.WhenAny(task, Task.Delay(timeout ?? DefaultTimeout)).ConfigureAwait(false);
        return task.IsCompleted;
    }

    /// <summary>
    /// Awaits <paramref name="task"/>, but fails with a <see cref="TimeoutException"/> after the bound instead of hanging the
    /// run when a pool bug leaves a caller waiting forever (the fake clock never times a waiter out by itself).
    /// </summary>
    public static Task Bounded(this Task task, TimeSpan? timeout = null) => task.WaitAsync(timeout ?? TimeSpan.FromSeconds(10));

    /// <inheritdoc cref="Bounded(Task, TimeSpan?)"/>
    public static Task<T> Bounded<T>(this Task<T> task, TimeSpan? timeout = null) => task.WaitAsync(timeout ?? TimeSpan.FromSeconds(10));

    /// <summary>Blocking variant of <see cref="CompletesAsync"/>.</summary>
    public static bool Completes(Task task, TimeSpan? timeout = null) =>
        ((IAsyncResult)task).AsyncWaitHandle.WaitOne(timeout ?? DefaultTimeout) || task.IsCompleted;
}
