using Dapper;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Live reconfiguration on real servers, the server's own count of the pool's sessions (pg_stat_activity by application
/// name, the MariaDB processlist by user) as the judge: a lowered maximum takes the server down to it (idle sessions at
/// once, borrowed ones as they are returned) without touching a borrowed session, and a raised one serves a waiting open
/// with a new session at once.
/// </summary>
[TestClass]
public sealed class ReconfigureTests
{
    public TestContext TestContext { get; set; } = null!;

    private PoolUnderTest CreatePool(string provider, int max)
    {
        var options = TestOptions.Default();
        options.MaxPoolSize = max;
        options.AcquireTimeout = TimeSpan.FromSeconds(20);
        return provider switch
        {
            "postgres" => PoolUnderTest.Postgres(TestContext.TestName!, options),
            "mariadb" => PoolUnderTest.MariaDb(options),
            _ => throw new ArgumentOutOfRangeException(nameof(provider)),
        };
    }

    private static Task WaitForServerCountAsync(PoolUnderTest pool, int expected, string when) =>
        Poll.ValueAsync(async () => await pool.ServerConnectionsAsync()!, n => n == expected, $"{when}: the server to see {expected} connections of the pool");

    private static void Reconfigure(PoolUnderTest pool, Action<CovetPoolOptions> change)
    {
        var options = pool.DataSource.Options;
        change(options);
        pool.DataSource.Reconfigure(options);
    }

    [TestMethod]
    [DataRow("postgres")]
    [DataRow("mariadb")]
    public async Task LoweredMaximum_ServerSessionsShrinkToIt_BorrowedOnesKeepWorkingUntilReturned(string provider)
    {
        using var pool = CreatePool(provider, max: 6);
        var borrowed = new List<CovetDbConnection>();
        for (var i = 0; i < 6; i++)
        {
            var connection = pool.DataSource.CreateConnection();
            await connection.OpenAsync();
            await connection.ExecuteScalarAsync<int>("select 1");
            borrowed.Add(connection);
        }
        for (var i = 0; i < 3; i++)
            await borrowed[i].CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle == 3, "three returned connections idle");
        await WaitForServerCountAsync(pool, 6, "before the change");

        Reconfigure(pool, o => o.MaxPoolSize = 2);

        await WaitForServerCountAsync(pool, 3, "after lowering the maximum to 2 with three borrowed");
        var session = await pool.SessionIdAsync(borrowed[3]);
        Assert.AreEqual(session, await pool.SessionIdAsync(borrowed[3]), "a borrowed session was replaced");
        Assert.AreEqual(1L, await borrowed[3].ExecuteScalarAsync<long>("select 1"));

        await borrowed[3].CloseAsync();
        await WaitForServerCountAsync(pool, 2, "after one borrowed connection came back");
        await borrowed[4].CloseAsync();
        await borrowed[5].CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle == 2, "the last two pooled again");
        await WaitForServerCountAsync(pool, 2, "once every connection is back");
        Assert.AreEqual(2, pool.Stats.Total);
    }

    [TestMethod]
    [DataRow("postgres")]
    [DataRow("mariadb")]
    public async Task RaisedMaximum_AWaitingOpenGetsANewSessionAtOnce(string provider)
    {
        using var pool = CreatePool(provider, max: 1);
        await using var holder = pool.DataSource.CreateConnection();
        await holder.OpenAsync();
        var held = await pool.SessionIdAsync(holder);
        await using var waiting = pool.DataSource.CreateConnection();
        var open = waiting.OpenAsync();
        await Poll.UntilAsync(() => pool.Stats.Waiting == 1, "the second open to wait");

        Reconfigure(pool, o => o.MaxPoolSize = 2);

        await open.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.AreNotEqual(held, await pool.SessionIdAsync(waiting), "the waiter did not get a session of its own");
        await WaitForServerCountAsync(pool, 2, "after raising the maximum");
        Assert.AreEqual(2, pool.Stats.MaxPoolSize);
    }
}
