using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

[TestClass]
public sealed class FairnessTests
{
    [TestMethod]
    public async Task OpenAsync_WaitersAtMaxOne_GetTheConnectionInArrivalOrder()
    {
        const int waiters = 6;
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        var holder = await pool.OpenAsync();

        var connections = new List<CovetDbConnection>();
        var opens = new List<Task>();
        for (var i = 0; i < waiters; i++)
        {
            var connection = pool.Source.CreateConnection();
            connections.Add(connection);
            opens.Add(connection.OpenAsync());
            Assert.AreEqual(i + 1, pool.Stats.Waiting, "each caller queues before the next one arrives");
        }

        await holder.CloseAsync();
        for (var i = 0; i < waiters; i++)
        {
            await opens[i].Bounded();
            for (var later = i + 1; later < waiters; later++)
                Assert.IsFalse(opens[later].IsCompleted, $"waiter {later} got the connection before waiter {i}");
            Assert.AreEqual(waiters - i - 1, pool.Stats.Waiting);
            await connections[i].CloseAsync();
        }

        Assert.AreEqual(1, pool.Server.TotalOpened);
        Assert.AreEqual(waiters + 1, pool.Stats.Checkouts);
    }

    [TestMethod]
    public async Task Open_SyncWaitersOnDedicatedThreads_AreServedInArrivalOrder()
    {
        const int waiters = 4;
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        var holder = pool.Open();
        var order = new List<int>();
        var releases = Enumerable.Range(0, waiters).Select(_ => new ManualResetEventSlim()).ToArray();
        var threads = new List<Thread>();
        for (var i = 0; i < waiters; i++)
        {
            var index = i;
            var thread = new Thread(() =>
            {
                using var connection = pool.Open();
                lock (order)
                    order.Add(index);
                releases[index].Wait(TimeSpan.FromSeconds(10));
            }) { IsBackground = true, Name = $"sync-waiter-{i}" };
            threads.Add(thread);
            thread.Start();
            Poll.Until(() => pool.Stats.Waiting == index + 1, $"waiter {index} queued");
        }

        holder.Close();
        for (var i = 0; i < waiters; i++)
        {
            Poll.Until(() => { lock (order) return order.Count == i + 1; }, $"waiter {i} served");
            releases[i].Set();
        }
        foreach (var thread in threads)
            Assert.IsTrue(thread.Join(TimeSpan.FromSeconds(5)));

        CollectionAssert.AreEqual(Enumerable.Range(0, waiters).ToList(), order);
    }

    [TestMethod]
    public async Task OpenAsync_NewcomerWhileOthersWait_DoesNotBargeAhead()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        var holder = await pool.OpenAsync();
        await using var first = pool.Source.CreateConnection();
        var firstOpen = first.OpenAsync();

        await holder.CloseAsync();      // handed straight to the waiter: never visible as idle
        await using var newcomer = pool.Source.CreateConnection();
        var newcomerOpen = newcomer.OpenAsync();

        await firstOpen.Bounded();
        Assert.IsFalse(newcomerOpen.IsCompleted);
        Assert.AreEqual(0, pool.Stats.Idle);
        await first.CloseAsync();
        await newcomerOpen.Bounded();
    }
}
