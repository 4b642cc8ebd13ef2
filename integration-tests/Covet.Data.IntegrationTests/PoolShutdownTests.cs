using Dapper;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Disposing a data source, or clearing a pool, closes the idle physical connections at once and the borrowed ones when
/// they are returned; the server (pg_stat_activity by application name, the MariaDB processlist by user) confirms it.
/// Servers notice a closed socket asynchronously, so the counts are polled.
/// </summary>
[TestClass]
public sealed class PoolShutdownTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>A pool with the production default of demand-driven sizing on: spares it warms must be closed too.</summary>
    private PoolUnderTest CreatePool(string provider)
    {
        var options = TestOptions.Default();
        options.AutoScale = true;
        return provider switch
        {
            "postgres" => PoolUnderTest.Postgres(TestContext.TestName!, options),
            "mariadb" => PoolUnderTest.MariaDb(options),
            _ => throw new ArgumentOutOfRangeException(nameof(provider)),
        };
    }

    private static async Task<int> ServerCountAsync(PoolUnderTest pool) => await pool.ServerConnectionsAsync()!;

    private static Task WaitForServerCountAsync(PoolUnderTest pool, int expected, string when) =>
        Poll.ValueAsync(() => ServerCountAsync(pool), n => n == expected, $"{when}: the server to see {expected} connections of the pool");

    /// <summary>Opens <paramref name="count"/> connections at once, each having run a query (so each needs a reset on return).</summary>
    private static async Task<List<CovetDbConnection>> BorrowAsync(PoolUnderTest pool, int count)
    {
        var connections = new List<CovetDbConnection>();
        for (var i = 0; i < count; i++)
        {
            var connection = pool.DataSource.CreateConnection();
            await connection.OpenAsync();
            await connection.ExecuteScalarAsync<int>("select 1");
            connections.Add(connection);
        }
        return connections;
    }

    [TestMethod]
    [DataRow("postgres")]
    [DataRow("mariadb")]
    public async Task Dispose_ClosesIdleConnectionsAtOnce_AndBorrowedOnesWhenReturned(string provider)
    {
        using var pool = CreatePool(provider);
        var borrowed = await BorrowAsync(pool, 5);
        // At least the five borrowed (with AutoScale on, the pool may warm a spare in the background).
        Assert.IsGreaterThanOrEqualTo(5, await ServerCountAsync(pool));

        // Two returned and settled idle, one returned and still being reset in the background, two still borrowed.
        await borrowed[0].CloseAsync();
        await borrowed[1].CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle >= 2, "the two returned connections to be idle");
        await borrowed[2].CloseAsync();
        pool.DataSource.Dispose();

        await WaitForServerCountAsync(pool, 2, "after Dispose, with two connections still borrowed");
        Assert.ThrowsExactly<ObjectDisposedException>(() => pool.DataSource.CreateConnection());

        await borrowed[3].CloseAsync();
        await borrowed[4].DisposeAsync();
        await WaitForServerCountAsync(pool, 0, "after the borrowed connections were returned to the disposed pool");
        var stats = pool.Stats;
        Assert.AreEqual(0, stats.Total, stats.ToString());
        Assert.AreEqual(stats.ConnectionsCreated, stats.ConnectionsDestroyed, stats.ToString());
    }

    [TestMethod]
    [DataRow("postgres")]
    [DataRow("mariadb")]
    public async Task Clear_ClosesIdleConnectionsAtOnce_BorrowedOnesWhenReturned_AndThePoolKeepsWorking(string provider)
    {
        using var pool = CreatePool(provider);
        var borrowed = await BorrowAsync(pool, 4);
        var oldSessions = new List<object>();
        foreach (var connection in borrowed)
            oldSessions.Add(await pool.SessionIdAsync(connection));
        await borrowed[0].CloseAsync();
        await borrowed[1].CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle >= 2, "the two returned connections to be idle");

        pool.DataSource.Clear();
        await WaitForServerCountAsync(pool, 2, "after Clear, with two connections still borrowed");
        Assert.AreEqual(1L, await borrowed[2].ExecuteScalarAsync<long>("select 1"), "a borrowed connection keeps working until it is returned");

        await borrowed[2].CloseAsync();
        await borrowed[3].CloseAsync();
        await WaitForServerCountAsync(pool, 0, "after the borrowed connections were returned");
        Assert.AreEqual(0, pool.Stats.Total);

        // The pool itself is not disposed: the next borrower gets a brand-new physical connection.
        await using var fresh = pool.DataSource.CreateConnection();
        await fresh.OpenAsync();
        CollectionAssert.DoesNotContain(oldSessions, await pool.SessionIdAsync(fresh));
        Assert.AreEqual(1, await ServerCountAsync(pool));
    }

    [TestMethod]
    public async Task Postgres_ClearPoolOfAFactoryConnection_ClosesTheServerConnections()
    {
        var applicationName = Pg.NewApplicationName("factory-clear");
        var factory = new CovetProviderFactory(NpgsqlFactory.Instance, TestOptions.Default());
        var connectionString = Pg.ConnectionString(applicationName);
        await using var connection = factory.CreateConnection()!;
        connection.ConnectionString = connectionString;
        await connection.OpenAsync();
        await using (var second = factory.CreateConnection()!)
        {
            second.ConnectionString = connectionString;
            await second.OpenAsync();
        }
        await connection.CloseAsync();
        Assert.AreEqual(2, await Pg.CountAsync(applicationName));

        CovetDbConnection.ClearPool((CovetDbConnection)connection);
        await Pg.WaitForCountAsync(applicationName, 0, "after CovetDbConnection.ClearPool");

        await connection.OpenAsync();
        Assert.AreEqual(1, await Pg.CountAsync(applicationName));
        await connection.CloseAsync();
        factory.ClearPool(connectionString);
        await Pg.WaitForCountAsync(applicationName, 0, "after CovetProviderFactory.ClearPool");
    }
}
