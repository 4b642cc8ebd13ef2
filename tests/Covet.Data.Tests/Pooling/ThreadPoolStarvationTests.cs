using System.Collections.Concurrent;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

/// <summary>
/// Sync callers blocked in Open are woken by the returner directly: they never need a thread-pool thread, so a starved
/// thread pool (the usual state of an app doing sync-over-async) cannot stall them.
/// </summary>
[TestClass]
[DoNotParallelize] // ties up the process's thread pool for a moment
public sealed class ThreadPoolStarvationTests
{
    private const int Openers = 8;
    private const int Iterations = 100;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    [TestMethod]
    public void SyncOpeners_WhileThreadPoolIsTiedUp_AllComplete() => RunSyncOpenersOnStarvedPool(resetQuery: null);

    [TestMethod]
    public void SyncOpeners_WithSessionReset_WhileThreadPoolIsTiedUp_AllComplete() => RunSyncOpenersOnStarvedPool(resetQuery: "RESET ALL");

    private static void RunSyncOpenersOnStarvedPool(string? resetQuery)
    {
        using var pool = TestPool.Create(o =>
        {
            o.MaxPoolSize = 1;
            o.ResetQuery = resetQuery;
            o.AcquireTimeout = TimeSpan.FromSeconds(30); // fake clock: never fires here
        });
        using (var warm = pool.Open())
            warm.QueryScalar("SELECT 1");
        Poll.Until(() => pool.Stats.Idle == 1, "the warm connection idle");

        var errors = new ConcurrentQueue<Exception>();
        var completed = 0;
        var gate = new ManualResetEventSlim(); // never disposed: blockers still queued after the test must find it set, not disposed
        Task? probe = null;
        var threads = new List<Thread>();
        try
        {
            TieUpThreadPool(gate);
            probe = Task.Run(() => { });   // queued behind the blockers: it cannot run while the pool is tied up

            for (var t = 0; t < Openers; t++)
            {
                var thread = new Thread(() =>
                {
                    try
                    {
                        for (var i = 0; i < Iterations; i++)
                        {
                            using var connection = pool.Open();
                            if (!Equals(connection.QueryScalar("SELECT 7"), 7))
                                throw new InvalidOperationException("wrong result");
                            Interlocked.Increment(ref completed);
                        }
                    }
                    catch (Exception e)
                    {
                        errors.Enqueue(e);
                    }
                }) { IsBackground = true, Name = $"sync-opener-{t}" };
                threads.Add(thread);
                thread.Start();
            }

            var deadline = DateTime.UtcNow + Bound;
            var allDone = threads.All(t => t.Join(Max(TimeSpan.Zero, deadline - DateTime.UtcNow)));
            var poolWasTiedUp = !probe.IsCompleted;

            Assert.IsTrue(poolWasTiedUp || allDone, "the thread pool was not tied up: the test proved nothing");
            Assert.IsTrue(allDone,
                $"sync openers stalled while the thread pool was busy: {Volatile.Read(ref completed)} of {Openers * Iterations} checkouts done; {pool.Stats}");
            if (!poolWasTiedUp)
                Assert.Inconclusive("the thread pool grew enough to run queued work during the test");
        }
        finally
        {
            gate.Set();
            pool.Source.Dispose();   // wakes any opener still waiting, so no thread outlives the test
            foreach (var thread in threads)
                thread.Join(TimeSpan.FromSeconds(5));
        }

        Assert.IsEmpty(errors, string.Join("\n", errors.Take(3)));
        Assert.AreEqual(Openers * Iterations, completed);
        Assert.AreEqual(0, pool.Server.ConcurrentUseViolations);
    }

    /// <summary>Occupies every thread-pool thread, with a backlog of blockers for any thread the pool injects meanwhile.</summary>
    private static void TieUpThreadPool(ManualResetEventSlim gate)
    {
        var blockers = ThreadPool.ThreadCount + Environment.ProcessorCount + 64;
        for (var i = 0; i < blockers; i++)
            ThreadPool.UnsafeQueueUserWorkItem(static g => g.Wait(TimeSpan.FromSeconds(30)), gate, preferLocal: false);
        Poll.Until(() => ThreadPool.PendingWorkItemCount > 0, "blockers queued beyond the thread pool's threads");
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
