using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

[TestClass]
public sealed class EvictionTests
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(60);

    private static TestPool Create(int min = 0, int max = 10, TimeSpan? maxLifetime = null) => TestPool.Create(o =>
    {
        o.MinPoolSize = min;
        o.MaxPoolSize = max;
        o.IdleTimeout = IdleTimeout;
        o.MaxLifetime = maxLifetime ?? TimeSpan.Zero;
        o.HealthCheckInterval = TimeSpan.Zero;   // only eviction under test
        o.PrePing = false;
    });

    private static async Task ReturnAll(IEnumerable<CovetDbConnection> connections)
    {
        foreach (var c in connections)
            await c.DisposeAsync();
    }

    private static async Task<List<CovetDbConnection>> OpenMany(TestPool pool, int count)
    {
        var list = new List<CovetDbConnection>();
        for (var i = 0; i < count; i++)
            list.Add(await pool.OpenAsync());
        return list;
    }

    [TestMethod]
    public async Task IdleConnection_PastIdleTimeout_IsClosed()
    {
        await using var pool = Create();
        await ReturnAll(await OpenMany(pool, 2));
        Assert.AreEqual(2, pool.Stats.Idle);

        pool.Time.Advance(IdleTimeout - TimeSpan.FromSeconds(1));
        Assert.AreEqual(2, pool.Stats.Idle, "evicted before the idle timeout");

        pool.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(0, pool.Server.OpenConnections);
        var destroyed = pool.LogsWithId(2003);
        Assert.HasCount(2, destroyed);
        Assert.IsTrue(destroyed.All(r => r.Message.Contains("idle timeout", StringComparison.Ordinal)));
    }

    [TestMethod]
    public async Task IdleConnection_UsedAgainBeforeTimeout_IsKept()
    {
        await using var pool = Create();
        await ReturnAll(await OpenMany(pool, 1));
        pool.Time.Advance(TimeSpan.FromSeconds(40));
        await ReturnAll(await OpenMany(pool, 1));      // reused: idle clock restarts
        pool.Time.Advance(TimeSpan.FromSeconds(40));

        Assert.AreEqual(1, pool.Stats.Idle);
        Assert.AreEqual(1, pool.Server.TotalOpened);
    }

    [TestMethod]
    public async Task IdleEviction_NeverDropsBelowMinPoolSize()
    {
        await using var pool = Create(min: 2);
        await Poll.UntilAsync(() => pool.Stats.Idle == 2, "the minimum warmed up");
        await ReturnAll(await OpenMany(pool, 5));
        Assert.AreEqual(5, pool.Stats.Idle);

        pool.Time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));
        Assert.AreEqual(2, pool.Stats.Total);
        Assert.AreEqual(2, pool.Stats.Idle);
        Assert.AreEqual(2, pool.Server.OpenConnections);

        pool.Time.Advance(IdleTimeout * 3);
        Assert.AreEqual(2, pool.Stats.Total, "the minimum is kept however long it stays idle");
        Assert.AreEqual(5, pool.Server.TotalOpened, "no churn: the minimum's connections are not replaced");
    }

    [TestMethod]
    public async Task IdleEviction_ClosesTheColdestConnectionsFirst()
    {
        await using var pool = Create(min: 1);
        await Poll.UntilAsync(() => pool.Stats.Idle == 1, "the minimum warmed up");
        var connections = await OpenMany(pool, 3);
        var physicals = connections.Select(c => (Fakes.FakeDbConnection)c.UnderlyingConnection).ToList();
        await ReturnAll(connections);

        pool.Time.Advance(IdleTimeout);
        Assert.AreEqual(1, pool.Stats.Idle);
        // Returned last = on top of the idle stack = hottest: that one survives.
        Assert.AreEqual(System.Data.ConnectionState.Open, physicals[^1].State);
        Assert.IsTrue(physicals.Take(2).All(p => p.State == System.Data.ConnectionState.Closed));
    }

    [TestMethod]
    public async Task IdleTimeoutZero_NeverEvicts()
    {
        await using var pool = TestPool.Create(o => { o.IdleTimeout = TimeSpan.Zero; o.MaxLifetime = TimeSpan.Zero; o.HealthCheckInterval = TimeSpan.Zero; });
        await ReturnAll(await OpenMany(pool, 3));
        pool.Time.Advance(TimeSpan.FromHours(5));
        Assert.AreEqual(3, pool.Stats.Idle);
    }

    [TestMethod]
    public async Task MaxLifetime_RetiresIdleConnection_AndMinimumIsRefilled()
    {
        await using var pool = Create(min: 1, maxLifetime: TimeSpan.FromSeconds(100));
        await Poll.UntilAsync(() => pool.Stats.Idle == 1, "the minimum warmed up");
        var original = pool.OpenedPhysicals.Single();

        pool.Time.Advance(TimeSpan.FromSeconds(90));
        Assert.AreEqual(System.Data.ConnectionState.Open, original.State, "retired before 97.5 % of its lifetime");

        pool.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.AreEqual(System.Data.ConnectionState.Closed, original.State);
        await Poll.UntilAsync(() => pool.Stats.Idle == 1, "the minimum refilled");
        Assert.AreEqual(2, pool.Server.TotalOpened);
        Assert.IsTrue(pool.LogsWithId(2003).Any(r => r.Message.Contains("max lifetime", StringComparison.Ordinal)));
    }

    [TestMethod]
    public async Task MaxLifetime_BorrowedConnection_IsRetiredWhenReturned()
    {
        await using var pool = Create(maxLifetime: TimeSpan.FromSeconds(100));
        var connection = await pool.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(101));
        Assert.AreEqual(1, await connection.QueryScalarAsync("SELECT 1"), "never closed under its borrower");

        await connection.CloseAsync();
        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(0, pool.Server.OpenConnections);
    }

    [TestMethod]
    public async Task MaxLifetime_ExpiredIdleConnection_IsNotHandedOutEvenBeforeMaintenanceRuns()
    {
        await using var pool = TestPool.Create(o =>
        {
            o.MaxLifetime = TimeSpan.FromSeconds(10);
            o.MaintenanceInterval = TimeSpan.FromHours(1);   // the eviction timer does not get a chance
            o.PrePing = false;
        });
        await ReturnAll(await OpenMany(pool, 1));
        pool.Time.Advance(TimeSpan.FromSeconds(11));

        await using var connection = await pool.OpenAsync();
        Assert.AreEqual(2, pool.Server.TotalOpened);
        Assert.AreEqual(1, pool.Server.OpenConnections);
    }
}
