using System.Data;
using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

[TestClass]
public sealed class SizingTests
{
    [TestMethod]
    public async Task Open_ManyConcurrentCallers_NeverExceedMaxPoolSize()
    {
        const int max = 3;
        await using var pool = TestPool.Create(o => o.MaxPoolSize = max);
        var peakTotal = 0;
        var workers = Enumerable.Range(0, 24).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 25; i++)
            {
                await using var connection = await pool.OpenAsync();
                Assert.AreEqual(i, await connection.QueryScalarAsync($"SELECT {i}"));
                var total = pool.Stats.Total;
                InterlockedMax(ref peakTotal, total);
            }
        })).ToArray();
        Assert.IsTrue(await Poll.CompletesAsync(Task.WhenAll(workers), TimeSpan.FromSeconds(30)), "the workers did not finish");
        await Task.WhenAll(workers);

        Assert.IsLessThanOrEqualTo(max, pool.Server.PeakOpenConnections);
        Assert.IsLessThanOrEqualTo(max, peakTotal);
        Assert.AreEqual(24 * 25, pool.Stats.Checkouts);
        Assert.AreEqual(0, pool.Server.ConcurrentUseViolations);
    }

    [TestMethod]
    public async Task Open_AtMaxPoolSize_WaitsInsteadOfOpeningAnother()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 2);
        await using var a = await pool.OpenAsync();
        await using var b = await pool.OpenAsync();
        await using var c = pool.Source.CreateConnection();

        var open = c.OpenAsync();
        Assert.IsFalse(open.IsCompleted);
        Assert.AreEqual(1, pool.Stats.Waiting);
        Assert.AreEqual(2, pool.Server.OpenConnections);

        await a.CloseAsync();
        await open.Bounded();
        Assert.AreEqual(2, pool.Server.TotalOpened, "the waiter should have been given the returned connection");
        Assert.AreEqual(0, pool.Stats.Waiting);
    }

    [TestMethod]
    public async Task MinPoolSize_IsWarmedUpInTheBackground_WithoutAnyOpen()
    {
        await using var pool = TestPool.Create(o => { o.MinPoolSize = 3; o.MaxPoolSize = 10; },
            script: server => server.OpenLatency = TimeSpan.FromSeconds(1));

        // Creating the data source did not wait for the opens: they are still in flight on the fake clock.
        Assert.AreEqual(0, pool.Server.OpenConnections);
        Assert.AreEqual(3, pool.Stats.Total, "the warm-up reserves its slots at once");

        // The opens run on thread-pool threads (never on the creator's, which may be inside a TransactionScope), so they
        // start their one-second connect a moment later: move the clock on in small steps until all three are done.
        await Poll.UntilAsync(() =>
        {
            pool.Time.Advance(TimeSpan.FromMilliseconds(100));
            return pool.Stats.Idle == 3;
        }, "three idle warm connections");

        Assert.AreEqual(3, pool.Server.OpenConnections);
        Assert.AreEqual(0, pool.Stats.Checkouts);
        Assert.AreEqual(3, pool.Stats.ConnectionsCreated);
    }

    [TestMethod]
    public async Task MinPoolSize_AfterConnectionsAreLost_IsRefilledByMaintenance()
    {
        await using var pool = TestPool.Create(o => { o.MinPoolSize = 2; o.MaxPoolSize = 10; });
        await Poll.UntilAsync(() => pool.Stats.Idle == 2, "two idle warm connections");

        await using (var connection = await pool.OpenAsync())
            await Assert.ThrowsAsync<FakeDbException>(() => connection.ExecAsync("BREAK"));
        Assert.AreEqual(1, pool.Stats.Total);

        pool.Time.Advance(pool.Source.Options.MaintenanceInterval);
        await Poll.UntilAsync(() => pool.Stats is { Total: 2, Idle: 2 }, "the minimum refilled");
        Assert.AreEqual(2, pool.Server.OpenConnections);
    }

    [TestMethod]
    public async Task Clear_ClosesIdleConnectionsAtOnce_AndBorrowedOnesWhenReturned()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 5);
        var borrowed = await pool.OpenAsync();
        await using (await pool.OpenAsync())
        await using (await pool.OpenAsync())
        {
        }
        Assert.AreEqual(3, pool.Server.OpenConnections);

        pool.Source.Clear();
        Assert.AreEqual(1, pool.Server.OpenConnections, "idle connections must close at once");
        Assert.AreEqual(ConnectionState.Open, borrowed.State, "a borrowed connection keeps working until returned");
        Assert.AreEqual(1, await borrowed.QueryScalarAsync("SELECT 1"));

        await borrowed.CloseAsync();
        Assert.AreEqual(0, pool.Server.OpenConnections);
        Assert.AreEqual(0, pool.Stats.Total);

        await using var fresh = await pool.OpenAsync();
        Assert.AreEqual(4, pool.Server.TotalOpened, "after a clear only new physical connections are handed out");
    }

    [TestMethod]
    public async Task ClearPool_StaticOnConnection_ClearsThatPool()
    {
        await using var pool = TestPool.Create();
        await using (await pool.OpenAsync())
        {
        }
        await using var closed = pool.Source.CreateConnection();
        CovetDbConnection.ClearPool(closed);
        Assert.AreEqual(0, pool.Server.OpenConnections);
        Assert.HasCount(1, pool.LogsWithId(1002));
    }

    [TestMethod]
    public async Task Dispose_ClosesIdleConnectionsAtOnce_AndBorrowedOnesWhenReturned()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 5);
        var borrowed = await pool.OpenAsync();
        await using (await pool.OpenAsync())
        await using (await pool.OpenAsync())
        {
        }

        await pool.Source.DisposeAsync();
        Assert.AreEqual(1, pool.Server.OpenConnections, "idle connections must close at once");

        await borrowed.DisposeAsync();
        Assert.AreEqual(0, pool.Server.OpenConnections);
        Assert.AreEqual(0, pool.Stats.Total);
        Assert.ThrowsExactly<ObjectDisposedException>(() => pool.Source.CreateConnection());
        Assert.HasCount(1, pool.LogsWithId(1003));
    }

    [TestMethod]
    public async Task Dispose_WakesWaitersWithObjectDisposed()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        await using var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();

        pool.Source.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => open.Bounded());
        Assert.AreEqual(0, pool.Stats.Waiting);
    }

    [TestMethod]
    public async Task OpenAsync_WhenPhysicalOpenFails_ReleasesTheSlot()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        pool.Server.FailNextOpens = 1;

        await using var connection = pool.Source.CreateConnection();
        var e = await Assert.ThrowsExactlyAsync<FakeDbException>(() => connection.OpenAsync());
        Assert.AreEqual(FakeDbException.CannotConnectState, e.SqlState);
        Assert.AreEqual(ConnectionState.Closed, connection.State);
        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(1, pool.Stats.ConnectionFailures);

        await connection.OpenAsync();
        Assert.AreEqual(1, await connection.QueryScalarAsync("SELECT 1"));
        Assert.AreEqual(1, pool.Stats.Total);
    }

    [TestMethod]
    public void Open_WhenPhysicalOpenFails_ReleasesTheSlot()
    {
        using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        pool.Server.FailNextOpens = 2;

        using var connection = pool.Source.CreateConnection();
        Assert.ThrowsExactly<FakeDbException>(connection.Open);
        Assert.ThrowsExactly<FakeDbException>(connection.Open);
        Assert.AreEqual(0, pool.Stats.Total);

        connection.Open();
        Assert.AreEqual(1, pool.Stats.Total);
        Assert.AreEqual(2, pool.Stats.ConnectionFailures);
        Assert.HasCount(2, pool.LogsWithId(2002));
    }

    [TestMethod]
    public async Task Open_WhenWaiterIsHandedAFreedSlotAndItsOpenFails_SlotIsStillReleased()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();

        // The holder's connection dies: its slot (not a connection) goes to the waiter, whose own open then fails.
        await Assert.ThrowsAsync<FakeDbException>(() => holder.ExecAsync("BREAK"));
        pool.Server.FailNextOpens = 1;
        await holder.CloseAsync();

        await Assert.ThrowsExactlyAsync<FakeDbException>(() => open.Bounded());
        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(0, pool.Stats.Waiting);
        await using var next = await pool.OpenAsync();
        Assert.AreEqual(1, pool.Stats.Total);
    }

    [TestMethod]
    public async Task Open_ReusesTheMostRecentlyReturnedConnection()
    {
        await using var pool = TestPool.Create(o => o.HealthCheckInterval = TimeSpan.Zero);
        var a = await pool.OpenAsync();
        var b = await pool.OpenAsync();
        var c = await pool.OpenAsync();
        var hottest = c.UnderlyingConnection;
        await a.CloseAsync();
        await b.CloseAsync();
        await c.CloseAsync();

        await using var next = await pool.OpenAsync();
        Assert.AreSame(hottest, next.UnderlyingConnection, "the idle set is a stack: the hottest connection is reused first");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
                return;
            current = seen;
        }
    }
}
