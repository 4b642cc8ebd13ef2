using System.Runtime.CompilerServices;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

/// <summary>Pause, resume and drain on the fake provider, with the fake clock deciding every timeout.</summary>
[TestClass]
public sealed class PauseDrainTests
{
    private static readonly TimeSpan AcquireTimeout = TimeSpan.FromSeconds(5);

    private static TestPool CreatePool(int max, int min = 0) => TestPool.Create(o =>
    {
        o.MaxPoolSize = max;
        o.MinPoolSize = min;
        o.AcquireTimeout = AcquireTimeout;
        o.LeakDetectionThreshold = TimeSpan.FromSeconds(60); // on, and capturing every checkout: stragglers' stack traces are known
        o.LeakStackTraces = CovetLeakStackTraces.Always;
    });

    [TestMethod]
    public async Task Paused_OpensWaitDespiteIdleConnectionAndFreeSlot_ThenTimeOutSayingPaused()
    {
        await using var pool = CreatePool(max: 3);
        (await pool.OpenAsync()).Dispose(); // one idle connection, two free slots
        await pool.UntilQuiescentAsync();
        Assert.AreEqual(1, pool.Stats.Idle);

        await pool.Source.PauseAsync();
        Assert.AreEqual(CovetPoolState.Paused, pool.Source.State);
        Assert.AreEqual(CovetPoolState.Paused, pool.Stats.State);

        await using var plain = pool.Source.CreateConnection();
        var asyncOpen = plain.OpenAsync();
        var syncOpen = Task.Run(() => pool.Open()); // the sync path waits too
        await Poll.UntilAsync(() => pool.Stats.Waiting == 2, "both opens queued");
        pool.Time.Advance(AcquireTimeout - TimeSpan.FromMilliseconds(1));
        Assert.IsFalse(await Poll.CompletesAsync(asyncOpen, TimeSpan.FromMilliseconds(50)), "gave up before the acquire timeout");
        Assert.IsFalse(syncOpen.IsCompleted);
        pool.Time.Advance(TimeSpan.FromMilliseconds(1));

        var e = await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => asyncOpen.Bounded());
        StringAssert.Contains(e.Message, "paused");
        var syncError = await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => syncOpen.Bounded());
        StringAssert.Contains(syncError.Message, "paused");
        Assert.AreEqual(1, pool.Server.TotalOpened, "neither the idle connection nor a free slot was used while paused");
        Assert.AreEqual(1, pool.Stats.Idle);
        Assert.AreEqual(0, pool.Stats.Waiting);
    }

    [TestMethod]
    public async Task Paused_BorrowedConnectionKeepsWorking_AndItsReturnGoesIdleNotToTheWaiter()
    {
        await using var pool = CreatePool(max: 1);
        await using var holder = await pool.OpenAsync();
        await pool.Source.PauseAsync();
        await using var waiting = pool.Source.CreateConnection();
        var open = waiting.OpenAsync();
        await Poll.UntilAsync(() => pool.Stats.Waiting == 1, "the open queued");

        Assert.AreEqual(1, await holder.QueryScalarAsync("SELECT 1"), "a borrowed connection keeps working while paused");
        await holder.CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle == 1, "the returned connection is idle");
        Assert.IsFalse(await Poll.CompletesAsync(open, TimeSpan.FromMilliseconds(50)), "a paused pool handed the return to a waiter");

        pool.Source.Resume();
        await open.Bounded();
        Assert.AreEqual(CovetPoolState.Running, pool.Stats.State);
        Assert.AreEqual(1, pool.Server.TotalOpened, "the waiter got the idle connection");
        Assert.HasCount(1, pool.LogsWithId(7001));
        Assert.HasCount(1, pool.LogsWithId(7002));
    }

    [TestMethod]
    public async Task Resume_ServesWaitersInArrivalOrder_WithIdleConnectionsThenFreeSlots()
    {
        const int waiters = 5;
        await using var pool = CreatePool(max: 3);
        (await pool.OpenAsync()).Dispose();
        await pool.UntilQuiescentAsync();
        await pool.Source.PauseAsync();

        var connections = new List<CovetDbConnection>();
        var opens = new List<Task>();
        for (var i = 0; i < waiters; i++)
        {
            var connection = pool.Source.CreateConnection();
            connections.Add(connection);
            opens.Add(connection.OpenAsync());
            await Poll.UntilAsync(() => pool.Stats.Waiting == opens.Count, $"waiter {i} queued");
        }

        pool.Source.Resume();
        await Task.WhenAll(opens.Take(3)).Bounded(); // the idle connection and the two free slots, to the three oldest
        Assert.IsFalse(await Poll.CompletesAsync(opens[3], TimeSpan.FromMilliseconds(50)));
        Assert.IsFalse(opens[4].IsCompleted);
        Assert.AreEqual(3, pool.Server.TotalOpened);

        await connections[0].CloseAsync();
        await opens[3].Bounded();
        Assert.IsFalse(await Poll.CompletesAsync(opens[4], TimeSpan.FromMilliseconds(50)), "the youngest waiter was served before the older one");
        await connections[1].CloseAsync();
        await opens[4].Bounded();
        Assert.AreEqual(3, pool.Server.TotalOpened);
        foreach (var c in connections)
            await c.DisposeAsync();
    }

    [TestMethod]
    public async Task Drain_ClosesIdleNow_ReportsTheStragglerWithItsStack_AndClosesItOnReturn()
    {
        await using var pool = CreatePool(max: 3);
        var straggler = await OpenStragglerAsync(pool);
        var a = await pool.OpenAsync();
        var b = await pool.OpenAsync();
        await a.CloseAsync();
        await b.CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle == 2, "two idle");

        var drain = pool.Source.DrainAsync(TimeSpan.FromSeconds(10));
        await Poll.UntilAsync(() => pool.Server.OpenConnections == 1, "the idle connections closed at once");
        Assert.AreEqual(CovetPoolState.Draining, pool.Stats.State);
        Assert.IsFalse(await Poll.CompletesAsync(drain, TimeSpan.FromMilliseconds(50)), "the drain ended with a connection still borrowed");
        Assert.AreEqual(1, await straggler.QueryScalarAsync("SELECT 1"), "the straggler keeps working while the pool drains");

        pool.Time.Advance(TimeSpan.FromSeconds(10));
        var report = await drain.Bounded();
        Assert.IsFalse(report.Completed);
        Assert.AreEqual(2, report.Closed);
        Assert.AreEqual(pool.Source.PoolName, report.PoolName);
        Assert.HasCount(1, report.Stragglers);
        Assert.IsNotNull(report.Stragglers[0].StackTrace);
        Assert.Contains(nameof(OpenStragglerAsync), report.Stragglers[0].StackTrace!);
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(10), report.Stragglers[0].Held);
        Assert.AreEqual(CovetPoolState.Paused, pool.Stats.State, "a finished drain leaves the pool paused");
        Assert.HasCount(1, pool.LogsWithId(7003));

        await straggler.CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Total == 0, "the straggler closed on return");
        Assert.AreEqual(0, pool.Server.OpenConnections);
        Assert.AreEqual(0, pool.Stats.Idle);
    }

    [TestMethod]
    public async Task Drain_CompletesWhenTheLastBorrowedConnectionComesBack()
    {
        await using var pool = CreatePool(max: 2);
        var holder = await pool.OpenAsync();
        var drain = pool.Source.DrainAsync(Timeout.InfiniteTimeSpan);
        Assert.IsFalse(await Poll.CompletesAsync(drain, TimeSpan.FromMilliseconds(50)));

        await holder.CloseAsync();
        var report = await drain.Bounded();
        Assert.IsTrue(report.Completed);
        Assert.AreEqual(1, report.Closed);
        Assert.IsEmpty(report.Stragglers);
        Assert.AreEqual(0, pool.Server.OpenConnections);
        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(CovetPoolState.Paused, pool.Source.State);
    }

    [TestMethod]
    public async Task Resume_AfterDrain_OpensFreshConnections_AndServesWhoWaitedDuringTheDrain()
    {
        await using var pool = CreatePool(max: 2);
        var first = await pool.OpenAsync();
        await first.CloseAsync();
        await pool.UntilQuiescentAsync();
        var oldPhysical = pool.OpenedPhysicals.Single();

        var report = await pool.Source.DrainAsync(TimeSpan.FromSeconds(1)).Bounded();
        Assert.IsTrue(report.Completed);
        Assert.AreEqual(1, report.Closed);
        Assert.IsTrue(oldPhysical.IsDisposed);

        await using var waited = pool.Source.CreateConnection();
        var open = waited.OpenAsync();
        await Poll.UntilAsync(() => pool.Stats.Waiting == 1, "the open queued on the drained pool");
        pool.Source.Resume();
        await open.Bounded();
        await using var another = await pool.OpenAsync();
        Assert.AreEqual(3, pool.Server.TotalOpened, "two fresh physical connections after the drain");
        Assert.IsTrue(pool.OpenedPhysicals.Where(p => p != oldPhysical).All(p => !p.IsDisposed));
    }

    [TestMethod]
    public async Task Paused_HousekeepingDoesNotWarmUp_ResumeWarmsUpAgain()
    {
        await using var pool = CreatePool(max: 4, min: 2);
        await Poll.UntilAsync(() => pool.Stats.Idle == 2, "warmed up to the minimum");
        var report = await pool.Source.DrainAsync(TimeSpan.FromSeconds(1)).Bounded();
        Assert.AreEqual(2, report.Closed);
        for (var i = 0; i < 5; i++)
        {
            pool.Time.Advance(TimeSpan.FromSeconds(1)); // maintenance visits
            await Task.Delay(10);
        }
        Assert.AreEqual(2, pool.Server.TotalOpened, "a paused pool warmed up");
        Assert.AreEqual(0, pool.Stats.Total);

        pool.Source.Resume();
        await Poll.UntilAsync(() =>
        {
            pool.Time.Advance(TimeSpan.FromSeconds(1));
            return pool.Stats.Idle == 2;
        }, "warmed up again after resume");
        Assert.AreEqual(4, pool.Server.TotalOpened);
    }

    [TestMethod]
    public async Task CovetPools_PauseResumeDrainByName_ApplyToThatPoolOnly()
    {
        await using var pool = TestPool.Create(o => { o.PoolName = "pause-by-name-" + Guid.NewGuid().ToString("N"); o.MaxPoolSize = 2; });
        await using var other = TestPool.Create(o => o.PoolName = "pause-by-name-other-" + Guid.NewGuid().ToString("N"));
        var name = pool.Source.PoolName;

        Assert.AreEqual(1, await CovetPools.PauseAsync(name));
        Assert.AreEqual(CovetPoolState.Paused, pool.Source.State);
        Assert.AreEqual(CovetPoolState.Running, other.Source.State);
        Assert.AreEqual(CovetPoolState.Paused, CovetPools.GetStatistics(name).Single().State);
        Assert.AreEqual(1, CovetPools.Resume(name));
        Assert.AreEqual(CovetPoolState.Running, pool.Source.State);

        var reports = await CovetPools.DrainAsync(name, TimeSpan.Zero).Bounded();
        Assert.HasCount(1, reports);
        Assert.IsTrue(reports[0].Completed);
        Assert.AreEqual(CovetPoolState.Paused, pool.Source.State);
        Assert.AreEqual(0, await CovetPools.PauseAsync("no-such-pool-" + Guid.NewGuid()));
        Assert.IsEmpty(await CovetPools.DrainAsync("no-such-pool-" + Guid.NewGuid(), TimeSpan.Zero));
        await Assert.ThrowsExactlyAsync<ArgumentOutOfRangeException>(() => pool.Source.DrainAsync(TimeSpan.FromSeconds(-2)));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<CovetDbConnection> OpenStragglerAsync(TestPool pool) => await pool.OpenAsync();
}
