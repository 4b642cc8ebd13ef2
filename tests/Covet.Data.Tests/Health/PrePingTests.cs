using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Health;

[TestClass]
public sealed class PrePingTests
{
    private static readonly TimeSpan AliveWindow = TimeSpan.FromMilliseconds(500);

    private static TestPool Create(bool prePing = true, int max = 4) => TestPool.Create(o =>
    {
        o.MaxPoolSize = max;
        o.PrePing = prePing;
        o.AliveBypassWindow = AliveWindow;
        o.HealthCheckInterval = TimeSpan.Zero;
    });

    private static async Task FillIdle(TestPool pool, int count)
    {
        var connections = new List<CovetDbConnection>();
        for (var i = 0; i < count; i++)
            connections.Add(await pool.OpenAsync());
        foreach (var c in connections)
            await c.DisposeAsync();
        Assert.AreEqual(count, pool.Stats.Idle);
    }

    [TestMethod]
    public async Task Open_AfterServerKilledIdleConnections_HandsOutOnlyLiveOnes()
    {
        await using var pool = Create();
        await FillIdle(pool, 4);
        pool.Server.KillAll();
        pool.Time.Advance(AliveWindow + TimeSpan.FromMilliseconds(1));

        var failures = 0;
        for (var i = 0; i < 100; i++)
        {
            try
            {
                await using var connection = await pool.OpenAsync();
                Assert.AreEqual(1000 + i, await connection.QueryScalarAsync($"SELECT {1000 + i}"));
            }
            catch (FakeDbException)
            {
                failures++;
            }
        }

        Assert.AreEqual(0, failures, "a dead connection was handed out");
        Assert.AreEqual(4, pool.Stats.PrePingFailures, "each killed connection should be found dead by the pre-ping");
        Assert.HasCount(4, pool.LogsWithId(3001));
        Assert.AreEqual(pool.Stats.Total, pool.Server.OpenConnections);
    }

    [TestMethod]
    public void Open_Sync_AfterServerKilledIdleConnection_HandsOutALiveOne()
    {
        using var pool = Create();
        using (pool.Open())
        {
        }
        pool.Server.KillAll();
        pool.Time.Advance(AliveWindow + TimeSpan.FromMilliseconds(1));

        using var connection = pool.Open();
        Assert.AreEqual(5, connection.QueryScalar("SELECT 5"));
        Assert.AreEqual(1, pool.Stats.PrePingFailures);
        Assert.AreEqual(2, pool.Server.TotalOpened);
    }

    [TestMethod]
    public async Task Open_WithinAliveWindow_SendsNoPing()
    {
        await using var pool = Create();
        await using (var connection = await pool.OpenAsync())
            await connection.QueryScalarAsync("SELECT 42");
        pool.Server.ClearLog();
        pool.Time.Advance(AliveWindow - TimeSpan.FromMilliseconds(100));

        await using (var connection = await pool.OpenAsync())
            await connection.QueryScalarAsync("SELECT 43");

        CollectionAssert.AreEqual(new[] { "SELECT 43" }, pool.Server.ExecutedCommands.ToArray());
    }

    [TestMethod]
    public async Task Open_AfterAliveWindow_PingsWithHealthQueryBeforeHandingOut()
    {
        await using var pool = Create();
        await using (var connection = await pool.OpenAsync())
            await connection.QueryScalarAsync("SELECT 42");
        pool.Server.ClearLog();
        pool.Time.Advance(AliveWindow + TimeSpan.FromMilliseconds(1));

        await using (var connection = await pool.OpenAsync())
            await connection.QueryScalarAsync("SELECT 43");

        CollectionAssert.AreEqual(new[] { "SELECT 1", "SELECT 43" }, pool.Server.ExecutedCommands.ToArray());
    }

    [TestMethod]
    public async Task Open_WithCustomHealthQuery_PingsWithIt()
    {
        await using var pool = TestPool.Create(o => { o.HealthQuery = "SELECT 7"; o.HealthCheckInterval = TimeSpan.Zero; });
        await using (await pool.OpenAsync())
        {
        }
        pool.Server.ClearLog();
        pool.Time.Advance(TimeSpan.FromSeconds(1));
        await using (await pool.OpenAsync())
        {
        }
        CollectionAssert.AreEqual(new[] { "SELECT 7" }, pool.Server.ExecutedCommands.ToArray());
    }

    [TestMethod]
    public async Task Open_WithPrePingOff_HandsOutTheKilledConnection()
    {
        // The control for the tests above: without the pre-ping the dead connection reaches the caller.
        await using var pool = Create(prePing: false);
        await FillIdle(pool, 1);
        pool.Server.KillAll();
        pool.Time.Advance(AliveWindow + TimeSpan.FromMilliseconds(1));

        await using var connection = await pool.OpenAsync();
        var e = await Assert.ThrowsExactlyAsync<FakeDbException>(() => connection.QueryScalarAsync("SELECT 1"));
        Assert.AreEqual(FakeDbException.AdminShutdownState, e.SqlState);
        Assert.AreEqual(0, pool.Stats.PrePingFailures);
    }

    [TestMethod]
    public async Task Open_AfterABorrowerHitADeadConnection_ValidatesHotSiblingsToo()
    {
        await using var pool = Create();
        await FillIdle(pool, 3);
        pool.Server.KillAll();
        // Still inside the alive window: normally no ping. But a borrower finds its connection dead...
        await using (var first = await pool.OpenAsync())
            await Assert.ThrowsExactlyAsync<FakeDbException>(() => first.QueryScalarAsync("SELECT 1"));

        // ...so its siblings, killed by the same event, must be validated before they are handed out.
        for (var i = 0; i < 10; i++)
        {
            await using var connection = await pool.OpenAsync();
            Assert.AreEqual(i, await connection.QueryScalarAsync($"SELECT {i}"));
        }
        Assert.AreEqual(2, pool.Stats.PrePingFailures);
    }

    [TestMethod]
    public async Task OpenAsync_CancelledDuringPrePing_DoesNotLeakTheSlot()
    {
        await using var pool = Create(max: 1);
        await FillIdle(pool, 1);
        pool.Time.Advance(AliveWindow + TimeSpan.FromMilliseconds(1));
        pool.Server.BlackHole = true;       // the ping never answers

        using var cts = new CancellationTokenSource();
        await using (var connection = pool.Source.CreateConnection())
        {
            var open = connection.OpenAsync(cts.Token);
            await Poll.UntilAsync(() => pool.Server.ExecutedCommands.Contains("SELECT 1"), "the pre-ping in flight");
            await cts.CancelAsync();
            await Assert.ThrowsAsync<OperationCanceledException>(() => open.Bounded());
        }
        pool.Server.BlackHole = false;

        // The slot comes back once the abandoned ping has ended and the physical connection is closed (not before: until
        // then the server may still count it, and MaxPoolSize is a hard cap).
        await Poll.UntilAsync(() => pool.Stats.InUse == 0, "the slot of the connection being validated given back");
        await using var next = pool.Source.CreateConnection();
        var nextOpen = next.OpenAsync();
        Assert.IsTrue(await Poll.CompletesAsync(nextOpen), "the only slot leaked: the next caller waits forever");
        await nextOpen.Bounded();
        Assert.AreEqual(1, await next.QueryScalarAsync("SELECT 1"));
    }

    [TestMethod]
    public async Task HealthCheck_FindsDeadIdleConnections_AndRefillsTheMinimum()
    {
        await using var pool = TestPool.Create(o =>
        {
            o.MinPoolSize = 2;
            o.HealthCheckInterval = TimeSpan.FromSeconds(30);
            o.IdleTimeout = TimeSpan.Zero;
        });
        await Poll.UntilAsync(() => pool.Stats.Idle == 2, "the minimum warmed up");
        pool.Server.KillAll();

        pool.Time.Advance(TimeSpan.FromSeconds(30));
        await Poll.UntilAsync(() => pool.Stats.HealthCheckFailures == 2 && pool.Stats.Idle == 2, "dead idle connections replaced");
        Assert.AreEqual(4, pool.Server.TotalOpened);
        Assert.AreEqual(2, pool.Server.OpenConnections);
        Assert.HasCount(2, pool.LogsWithId(3002));
    }
}
