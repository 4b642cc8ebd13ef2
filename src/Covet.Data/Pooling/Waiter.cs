using Covet.Data.Health;

namespace Covet.Data.Pooling;

/// <summary>
/// A caller waiting for a connection. What it is handed is a connection, or null meaning "a slot was freed and reserved
/// for you: open a new connection"; it faults when its deadline passes and is cancelled by the caller's token or the
/// pool's disposal. Continuations run asynchronously so a returner never runs a waiter's code inline; a sync caller
/// blocked in <see cref="Task.Wait(TimeSpan)"/> is woken directly by the returner, without needing a thread-pool thread.
/// </summary>
/// <remarks>
/// <para>Two kinds. A waiter that <see cref="Acquisition"/> awaits itself (sync callers, and async callers with a
/// StateChange handler, an ambient transaction or tracing on) completes with the connection or reserved slot and the
/// acquire carries on. A <em>bound</em> waiter (<see cref="Borrower"/> set, see <see cref="CovetPool.TryAcquireReadyOrWait"/>)
/// is what a plain async <c>OpenAsync</c> returns: it completes only once its logical connection is open, so a waiting
/// caller costs this object and its task, not a chain of async state machines (memory per waiter matters with ten
/// thousand of them).</para>
/// <para>Its outcome is decided once, by whoever wins <see cref="Claim"/>: a returner (who checks the connection out to
/// it, or when the connection needs a ping, a reset or opening, queues that work to the thread pool, where an async
/// caller's continuation would run anyway), the waiter timer, the caller's token or the pool's disposal. Whoever claims
/// it decrements the queue's count of live waiters.</para>
/// </remarks>
internal sealed class Waiter(CovetPool pool, long start, CovetDbConnection? borrower, CheckoutSite site)
    // A classic waiter's continuation must never run on the returner's thread. A bound waiter's task is completed only
    // from its own thread-pool work item (see Post), so its continuation may run inline there.
    : TaskCompletionSource(borrower is null ? TaskCreationOptions.RunContinuationsAsynchronously : TaskCreationOptions.None), IThreadPoolWorkItem
{
    private const int Waiting = 0, Claimed = 1, Opened = 2, NeedsWork = 3, Failed = 4;
    private int _state;                   // Waiting until the outcome is claimed (see Claim); then what Execute does
    // What the claimer decided: the connection handed over, or null for a freed slot to open one in (a classic waiter
    // reads it after its task completed; a bound one in Execute), or a bound waiter's exception. Written before the
    // task completes or the work item is queued, so the reader sees it.
    private object? _outcome;

    /// <summary>When the acquire began (precise clock): its deadline and its acquire time are measured from here.</summary>
    public readonly long Start = start;
    public readonly CovetDbConnection? Borrower = borrower;
    public readonly CheckoutSite Site = site;
    public CancellationTokenRegistration Cancellation;

    public long Deadline => pool.Waiters.DeadlineOf(Start);

    /// <summary>Decided: served, expired, cancelled or failed (its task may complete a moment later).</summary>
    public bool IsClaimed => Volatile.Read(ref _state) != Waiting;

    private bool Claim()
    {
        if (Interlocked.CompareExchange(ref _state, Claimed, Waiting) != Waiting)
            return false;
        pool.Waiters.OnClaimed();
        return true;
    }

    public bool TryExpire()
    {
        if (!Claim())
            return false;
        if (Borrower is null)
            TrySetException(WaiterQueue.WaitTimedOut); // the acquire builds the real exception
        else
            Post(Failed, pool.ExhaustedException(null));
        return true;
    }

    public bool TryCancel()
    {
        if (!Claim())
            return false;
        if (Borrower is null)
            TrySetCanceled();
        else
            Post(Failed, new OperationCanceledException("Opening the connection was cancelled.", Cancellation.Token));
        return true;
    }

    public bool TryFailDisposed()
    {
        if (!Claim())
            return false;
        if (Borrower is null)
            TrySetCanceled(); // the acquire tells disposal from cancellation
        else
            Post(Failed, new ObjectDisposedException(nameof(CovetPool), $"Pool '{pool.Name}' was disposed while waiting for a connection."));
        return true;
    }

    /// <summary>A returner hands over a connection, or a freed slot (null) to open one in.</summary>
    public bool TryHand(PooledConnection? connection)
    {
        if (!Claim())
            return false;
        if (Borrower is null)
        {
            _outcome = connection;
            TrySetResult();
            return true;
        }
        // A ready connection is checked out to the borrower right here; one that needs I/O first (or a slot) is
        // finished by the work item.
        Post(connection is not null && pool.Acquisition.TryCheckOutToWaiter(this, connection) ? Opened : NeedsWork, connection);
        return true;
    }

    /// <summary>
    /// A bound waiter's outcome is applied by a work item on the thread pool's global (first-in, first-out) queue, never
    /// on the thread that decided it: the caller's continuation then runs inline in that work item, and handovers wait
    /// their turn behind I/O completions instead of jumping ahead of them on the returner's local queue (which made
    /// connections be held longer under load).
    /// </summary>
    private void Post(int state, object? outcome)
    {
        Cancellation.Unregister(); // never blocks: a callback already running finds the waiter claimed
        _outcome = outcome;
        Volatile.Write(ref _state, state);
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute()
    {
        switch (_state)
        {
            case Opened:
                TrySetResult();
                break;
            case NeedsWork:
                _ = pool.Acquisition.FinishHandOverAsync(this, (PooledConnection?)_outcome);
                break;
            default:
                Fail((Exception)_outcome!);
                break;
        }
    }

    /// <summary>Bound waiter, on a thread-pool thread: the borrower is open.</summary>
    public void Open(PooledConnection connection, long lease)
    {
        Borrower!.Attach(connection, lease);
        TrySetResult();
    }

    /// <summary>Classic waiter, once its task completed successfully: the connection handed over, or null for a slot.</summary>
    public PooledConnection? Handed => (PooledConnection?)_outcome;

    /// <summary>Bound waiter, on a thread-pool thread: the open failed.</summary>
    public void Fail(Exception exception)
    {
        if (exception is OperationCanceledException && Cancellation.Token.IsCancellationRequested)
            TrySetCanceled(Cancellation.Token);
        else
            TrySetException(exception);
    }
}
