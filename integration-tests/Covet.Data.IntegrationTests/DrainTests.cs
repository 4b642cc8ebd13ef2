using Dapper;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Drain on real servers: once <see cref="CovetDataSource.DrainAsync"/> returns, the server sees only the stragglers still
/// borrowed, none once they are returned, and <see cref="CovetDataSource.Resume"/> brings fresh sessions. The server
/// (pg_stat_activity by application name, the MariaDB processlist by user) is the judge; it notices closed sockets
/// asynchronously, so its counts are polled.
/// </summary>
[TestClass]
public sealed class DrainTests
{
    public TestContext TestContext { get; set; } = null!;

    private PoolUnderTest CreatePool(string provider) => provider switch
    {
        "postgres" => PoolUnderTest.Postgres(TestContext.TestName!, TestOptions.Default()),
        "mariadb" => PoolUnderTest.MariaDb(TestOptions.Default()),
        _ => throw new ArgumentOutOfRangeException(nameof(provider)),
    };

    private static Task WaitForServerCountAsync(PoolUnderTest pool, int expected, string when) =>
        Poll.ValueAsync(async () => await pool.ServerConnectionsAsync()!, n => n == expected, $"{when}: the server to see {expected} connections of the pool");

    [TestMethod]
    [DataRow("postgres")]
    [DataRow("mariadb")]
    public async Task Drain_LeavesOnlyTheStragglers_NoneOnceReturned_AndResumeBringsFreshSessions(string provider)
    {
        using var pool = CreatePool(provider);
        var borrowed = new List<CovetDbConnection>();
        var oldSessions = new List<object>();
        for (var i = 0; i < 4; i++)
        {
            var connection = pool.DataSource.CreateConnection();
            await connection.OpenAsync();
            await connection.ExecuteScalarAsync<int>("select 1");
            oldSessions.Add(await pool.SessionIdAsync(connection));
            borrowed.Add(connection);
        }
        await borrowed[0].CloseAsync();
        await borrowed[1].CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle >= 2, "the two returned connections to be idle");

        var report = await pool.DataSource.DrainAsync(TimeSpan.FromMilliseconds(300));
        Assert.IsFalse(report.Completed);
        Assert.AreEqual(2, report.Closed, report.ToString());
        Assert.HasCount(2, report.Stragglers);
        Assert.AreEqual(CovetPoolState.Paused, pool.DataSource.State);
        await WaitForServerCountAsync(pool, 2, "after the drain, with two stragglers still borrowed");
        Assert.AreEqual(1L, await borrowed[2].ExecuteScalarAsync<long>("select 1"), "a straggler keeps working");

        await borrowed[2].CloseAsync();
        await borrowed[3].DisposeAsync();
        await WaitForServerCountAsync(pool, 0, "after the stragglers were returned to the drained pool");
        Assert.AreEqual(0, pool.Stats.Total);

        pool.DataSource.Resume();
        await using var fresh = pool.DataSource.CreateConnection();
        await fresh.OpenAsync();
        CollectionAssert.DoesNotContain(oldSessions, await pool.SessionIdAsync(fresh));
        Assert.AreEqual(1, await pool.ServerConnectionsAsync()!);
    }
}
