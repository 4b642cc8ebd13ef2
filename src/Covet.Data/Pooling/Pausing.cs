using Covet.Data.Diagnostics;

namespace Covet.Data.Pooling;

/// <summary>
/// Pause, resume and drain of one pool: the operator's hand on the pool's state (<see cref="CovetPool.State"/>).
/// </summary>
/// <remarks>
/// <para>What each state means for the other parts. <see cref="CovetPoolState.Running"/>: normal. Paused: the fast path
/// (<see cref="CovetPool.TryAcquireReady"/>, <see cref="Acquisition.TryAcquireReadyOrWait"/>) takes nothing, and the slow
/// path queues every caller as a waiter even when idle connections or free slots exist (each still bounded by its acquire
/// timeout, whose error then says the pool is paused); a returned connection goes to the idle stack and a freed slot is
/// given up, never handed to a waiter (<see cref="CovetPool.MakeAvailable"/>, <see cref="CovetPool.ReleaseSlot"/>); the
/// housekeeping neither warms up nor health-checks nor probes (eviction and the leak watch go on). Draining: paused, and
/// every connection made available is closed instead, until no slot is left.</para>
/// <para>Contract: the state and the drain's completion source are guarded by <see cref="CovetPool.Gate"/>; the checkout
/// paths read the state under that lock, which they take anyway, so pausing costs a running pool one field read.
/// Because the state changes under the same lock that queues waiters and hands out connections, no caller can slip
/// past a pause: after <see cref="PauseAsync"/> returned, every new checkout finds it.</para>
/// </remarks>
internal sealed class Pausing(CovetPool pool)
{
    private TaskCompletionSource? _emptied; // guarded by the pool lock: set while draining, completed when Total reaches 0

    /// <summary>Holds new checkouts back. Completes once the pool is paused (at once: the state is taken under the lock every checkout takes).</summary>
    public Task PauseAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        bool changed;
        lock (pool.Gate)
        {
            ObjectDisposedException.ThrowIf(pool.Disposed, pool);
            changed = pool.State == CovetPoolState.Running;
            if (changed)
                pool.State = CovetPoolState.Paused;
        }
        if (changed)
            CovetLog.PoolPaused(pool.Logger, pool.Name, pool.Waiters.Count);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Serves opens again: the state becomes Running and, under the same lock (so no newcomer reaches the idle stack ahead
    /// of them), the queued waiters are matched oldest first with idle connections, connections waiting for a reset and
    /// free slots; they are handed over after the lock, and the housekeeping is woken (to warm up to the minimum again).
    /// </summary>
    public void Resume()
    {
        List<(Waiter Waiter, PooledConnection? Connection)> handovers;
        lock (pool.Gate)
        {
            if (pool.Disposed || pool.State == CovetPoolState.Running)
                return;
            pool.State = CovetPoolState.Running;
            handovers = pool.Acquisition.MatchWaitersLocked();
        }
        var served = pool.Acquisition.HandOver(handovers);
        CovetLog.PoolResumed(pool.Logger, pool.Name, served);
        pool.Wake();
    }

    /// <summary>
    /// Pauses the pool (state Draining), closes its idle connections now and each borrowed one as it comes back (the
    /// generation is bumped, as by <see cref="CovetPool.Clear"/>), until no slot is left or <paramref name="timeout"/> passes
    /// on the pool's clock; then the state is Paused. Stragglers returned after the timeout are closed on return too.
    /// </summary>
    public async Task<CovetDrainReport> DrainAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The drain timeout must be zero or more, or Timeout.InfiniteTimeSpan.");
        cancellationToken.ThrowIfCancellationRequested();
        var destroyedBefore = Interlocked.Read(ref pool.Counters.ConnectionsDestroyed);
        TaskCompletionSource emptied;
        List<PooledConnection> idle;
        bool alreadyEmpty;
        lock (pool.Gate)
        {
            ObjectDisposedException.ThrowIf(pool.Disposed, pool);
            pool.State = CovetPoolState.Draining;
            idle = pool.TakeAllIdleLocked();
            emptied = _emptied ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            alreadyEmpty = pool.Total == 0;
        }
        if (alreadyEmpty)
            emptied.TrySetResult();
        foreach (var c in idle)
            pool.Destroy(c, "pool drained");

        if (!emptied.Task.IsCompleted && timeout != TimeSpan.Zero)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var delay = Task.Delay(timeout, pool.Clock.Time, stop.Token);
            try
            {
                var first = await Task.WhenAny(emptied.Task, delay).ConfigureAwait(false);
                if (first == delay)
                    await delay.ConfigureAwait(false); // throws when it was the caller's token
            }
            catch (OperationCanceledException)
            {
                EndDrain(emptied);
                throw;
            }
            finally
            {
                stop.Cancel(); // the delay's timer goes now, not at the timeout
            }
        }
        var completed = EndDrain(emptied);
        var stragglers = completed ? [] : pool.Leaks.Holders(int.MaxValue);
        var closed = (int)(Interlocked.Read(ref pool.Counters.ConnectionsDestroyed) - destroyedBefore);
        CovetLog.PoolDrained(pool.Logger, pool.Name, closed, completed, stragglers.Count);
        return new CovetDrainReport(pool.Name, closed, completed, stragglers);
    }

    /// <summary>The drain is over: Draining becomes Paused (unless resumed meanwhile). True when no slot is left.</summary>
    private bool EndDrain(TaskCompletionSource emptied)
    {
        lock (pool.Gate)
        {
            if (pool.State == CovetPoolState.Draining)
                pool.State = CovetPoolState.Paused;
            if (_emptied == emptied)
                _emptied = null;
            return pool.Total == 0;
        }
    }

    /// <summary>A slot was given up: while draining, the last one completes the drain. Under the pool lock; the caller completes the returned source after it.</summary>
    public TaskCompletionSource? OnSlotFreedLocked() =>
        pool.Total == 0 && pool.State == CovetPoolState.Draining ? _emptied : null;
}
