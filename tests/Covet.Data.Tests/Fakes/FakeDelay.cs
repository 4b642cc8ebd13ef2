namespace Covet.Data.Tests.Fakes;

/// <summary>
/// Waits on a <see cref="TimeProvider"/>, either asynchronously or by blocking the calling thread
/// (the sync ADO.NET path), so that tests using FakeTimeProvider control every delay of the fake.
/// </summary>
internal static class FakeDelay
{
    /// <summary>
    /// Waits <paramref name="delay"/> (<see cref="Timeout.InfiniteTimeSpan"/> = until cancelled).
    /// Throws <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires.
    /// </summary>
    public static async ValueTask WaitAsync(TimeSpan delay, TimeProvider timeProvider, bool async, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (delay <= TimeSpan.Zero && delay != Timeout.InfiniteTimeSpan)
        {
            return;
        }

        Task delayTask = delay == Timeout.InfiniteTimeSpan
            ? Task.Delay(Timeout.Infinite, cancellationToken)
            : Task.Delay(delay, timeProvider, cancellationToken);

        if (async)
        {
            await delayTask.ConfigureAwait(false);
        }
        else
        {
            // Blocks the calling thread, like a sync driver call; rethrows the original exception.
            delayTask.GetAwaiter().GetResult();
        }
    }
}
