using Dapper;

namespace Covet.Data.IntegrationTests.Pgbouncer;

/// <summary>
/// Covet's pre-ping through pgbouncer tests Covet's link to pgbouncer (and costs pgbouncer one short transaction on some
/// server connection): it catches a pgbouncer restart; a backend dying behind pgbouncer is pgbouncer's business, and
/// Covet never sees it.
/// </summary>
[TestClass]
public sealed class PgbouncerPrePingTests
{
    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void RequirePgbouncer(TestContext context)
    {
        _ = context;
        Pgb.RequireReachable();
    }

    private PgbTestPool CreatePool(int connections)
    {
        var options = PgbTestPool.DefaultOptions(reset: false, maxPoolSize: connections);
        options.AliveBypassWindow = TimeSpan.Zero; // ping on every checkout
        return new PgbTestPool(TestContext.TestName!, options);
    }

    private static async Task WarmAsync(PgbTestPool pool, int count)
    {
        var held = new List<CovetDbConnection>();
        for (var i = 0; i < count; i++)
        {
            var connection = await pool.OpenAsync();
            held.Add(connection);
            await connection.ExecuteScalarAsync<int>("select 1");
        }
        foreach (var connection in held)
            await connection.DisposeAsync();
        await Poll.UntilNothingInUseAsync(pool.DataSource);
        Assert.AreEqual(count, pool.Stats.Total);
    }

    [TestMethod]
    public async Task PrePing_ReplacesTheConnectionsAPgbouncerRestartClosed_BeforeABorrowerSeesThem()
    {
        const int connections = 3;
        using var pool = CreatePool(connections);
        await WarmAsync(pool, connections);
        for (var i = 0; i < 20; i++)
        {
            await using var connection = await pool.OpenAsync();
            Assert.AreEqual(i, await connection.ExecuteScalarAsync<int>("select @i", new { i }));
        }
        Assert.AreEqual(0L, pool.Stats.PrePingFailures, "pinging through pgbouncer works");

        Env.RunShell(Pgb.RestartVariable, TimeSpan.FromSeconds(60));  // every client connection to pgbouncer is closed

        var borrowers = Enumerable.Range(0, connections).Select(async i =>
        {
            await using var connection = await pool.OpenAsync();
            return await connection.ExecuteScalarAsync<int>("select @i", new { i });
        }).ToArray();
        CollectionAssert.AreEqual(Enumerable.Range(0, connections).ToArray(), await Task.WhenAll(borrowers), "no borrower saw a dead connection");
        await Poll.UntilNothingInUseAsync(pool.DataSource);
        Assert.IsGreaterThan(0L, pool.Stats.PrePingFailures, "the pre-ping found the closed connections");

        // Borrowing all of them at once reaches every idle connection (the idle stack is LIFO): each dead one was pinged
        // and replaced, none was handed out.
        await WarmAsync(pool, connections);
        var stats = pool.Stats;
        Assert.AreEqual((long)connections, stats.PrePingFailures, stats.ToString());
        Assert.AreEqual((long)connections * 2, stats.ConnectionsCreated, stats.ToString());
    }

    [TestMethod]
    public async Task BackendsTerminatedBehindPgbouncer_AreInvisibleToCovet()
    {
        const int connections = 3;
        using var pool = CreatePool(connections);
        await WarmAsync(pool, connections);

        var killed = await Pgb.TerminateServerConnectionsAsync("covet");
        Assert.IsNotEmpty(killed, "pgbouncer held server connections for database covet");

        for (var i = 0; i < 10; i++)
        {
            await using var connection = await pool.OpenAsync();
            Assert.DoesNotContain(await connection.ExecuteScalarAsync<int>("select pg_backend_pid()"), killed);
        }
        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        Assert.AreEqual(0L, stats.PrePingFailures, "pgbouncer replaced the server connections; Covet's connections to it never broke");
        Assert.AreEqual(0L, stats.ConnectionsDestroyed, stats.ToString());
        Assert.AreEqual((long)connections, stats.ConnectionsCreated, stats.ToString());
    }
}
