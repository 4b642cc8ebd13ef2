namespace Covet.Data.Providers;

/// <summary>
/// A cancellation token that fires after a timeout on the pool's <see cref="TimeProvider"/> (so fake clocks in tests
/// drive it, as they drive every other time in the pool), or when the caller's token fires.
/// </summary>
internal sealed class Deadline : IDisposable
{
    private readonly CancellationTokenSource _timeout;
    private readonly CancellationTokenSource? _linked;

    public Deadline(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        _timeout = timeout == Timeout.InfiniteTimeSpan ? new CancellationTokenSource() : new CancellationTokenSource(timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout, time);
        _linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token, cancellationToken) : null;
    }

    public CancellationToken Token => (_linked ?? _timeout).Token;

    /// <summary>True when the timeout (not the caller) fired.</summary>
    public bool TimedOut => _timeout.IsCancellationRequested;

    public void Dispose()
    {
        _linked?.Dispose();
        _timeout.Dispose();
    }
}
