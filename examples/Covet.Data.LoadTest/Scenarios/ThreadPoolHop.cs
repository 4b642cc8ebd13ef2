using System.Runtime.CompilerServices;

namespace Covet.Data.LoadTest.Scenarios;

/// <summary>
/// <c>await new ThreadPoolHop()</c> continues on the thread pool's global (FIFO) queue, behind work already queued, the
/// way a network I/O completion does. <see cref="Task.Yield"/> is not the same: from a thread-pool thread it queues to
/// that thread's local queue, which the thread pops LIFO, so the caller usually continues at once and concurrent callers
/// run one after another instead of interleaving.
/// </summary>
public readonly struct ThreadPoolHop : ICriticalNotifyCompletion
{
    public ThreadPoolHop GetAwaiter() => this;

    public bool IsCompleted => false;

    public void GetResult()
    {
    }

    public void OnCompleted(Action continuation) =>
        ThreadPool.QueueUserWorkItem(static c => c(), continuation, preferLocal: false);

    public void UnsafeOnCompleted(Action continuation) =>
        ThreadPool.UnsafeQueueUserWorkItem(static c => c(), continuation, preferLocal: false);
}
