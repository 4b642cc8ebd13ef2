using System.Data.Common;
using Dapper;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// The pre-ping acceptance test from the issue: every idle connection of a full pool dies server-side (killed, or the
/// server restarted); once they are older than the alive window, 100 queries through the pool all succeed, because each
/// dead connection is found by the pre-ping and replaced before a caller sees it. For contrast the same kill runs against
/// the providers' own pools, whose failure counts are printed (not asserted: they are what Covet exists to fix).
/// </summary>
[TestClass]
public sealed class PrePingTests
{
    private const int PoolFill = 6;
    private const int Queries = 100;

    private static CovetPoolOptions Options() => TestOptions.Default(maxPoolSize: 10);

    /// <summary>Opens <paramref name="count"/> physical connections at once (all held together), then returns them all.</summary>
    private static async Task FillAsync(CovetDataSource dataSource, int count)
    {
        var connections = new List<CovetDbConnection>();
        for (var i = 0; i < count; i++)
        {
            var connection = dataSource.CreateConnection();
            await connection.OpenAsync();
            connections.Add(connection);
        }
        foreach (var connection in connections)
            await connection.DisposeAsync();
        var stats = await Poll.UntilNothingInUseAsync(dataSource);
        Assert.AreEqual(count, stats.Idle, $"the pool holds {count} idle connections");
    }

    /// <summary>Past the alive window, so the pool has no excuse to skip the pre-ping.</summary>
    private static Task PastTheAliveWindowAsync(CovetPoolOptions options) => Task.Delay(options.AliveBypassWindow + TimeSpan.FromMilliseconds(100));

    /// <summary>Runs the queries (<paramref name="callers"/> at once) and returns the failures.</summary>
    private static async Task<List<Exception>> RunQueriesAsync(Func<Task<DbConnection>> open, int callers = 4)
    {
        var failures = new List<Exception>();
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) <= Queries)
            {
                try
                {
                    await using var connection = await open();
                    Assert.AreEqual(1, await connection.ExecuteScalarAsync<int>("select 1"));
                }
                catch (Exception e) when (e is not AssertFailedException)
                {
                    lock (failures)
                        failures.Add(e);
                }
            }
        })));
        return failures;
    }

    private static async Task<List<Exception>> RunQueriesAsync(CovetDataSource dataSource) =>
        await RunQueriesAsync(async () =>
        {
            var connection = dataSource.CreateConnection();
            await connection.OpenAsync();
            return connection;
        });

    private static void AssertNoFailures(List<Exception> failures, CovetPoolStatistics stats, int killed)
    {
        Assert.IsEmpty(failures, $"{failures.Count} of {Queries} queries failed; first: {failures.FirstOrDefault()}");
        Assert.IsGreaterThanOrEqualTo(killed, stats.PrePingFailures, $"every dead connection was found by the pre-ping: {stats}");
        Assert.AreEqual(stats.Total, stats.Idle + stats.InUse);
    }

    // ------------------------------------------------------------------------------------------------ PostgreSQL

    [TestMethod]
    public async Task Postgres_EveryIdleConnectionTerminated_100QueriesThroughThePoolAllSucceed()
    {
        using var pool = new PgTestPool(nameof(Postgres_EveryIdleConnectionTerminated_100QueriesThroughThePoolAllSucceed), Options());
        await FillAsync(pool.DataSource, PoolFill);
        var pids = await pool.ServerPidsAsync();
        Assert.HasCount(PoolFill, pids);

        await Pg.TerminateAsync(pids);
        await PastTheAliveWindowAsync(pool.Options);
        var failures = await RunQueriesAsync(pool.DataSource);

        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        AssertNoFailures(failures, stats, PoolFill);
        Assert.IsEmpty((await pool.ServerPidsAsync()).Intersect(pids), "no terminated backend is in use");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Postgres_AfterAFullServerRestart_100QueriesThroughThePoolAllSucceed()
    {
        using var pool = new PgTestPool(nameof(Postgres_AfterAFullServerRestart_100QueriesThroughThePoolAllSucceed), Options());
        await FillAsync(pool.DataSource, PoolFill);

        await Pg.RestartAsync();
        await PastTheAliveWindowAsync(pool.Options);
        var failures = await RunQueriesAsync(pool.DataSource);

        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        AssertNoFailures(failures, stats, PoolFill);
        Assert.AreEqual(stats.Total, await pool.ServerConnectionsAsync());
    }

    [TestMethod]
    public async Task Postgres_WithPrePingOff_TerminatedConnectionsAreStillRetiredByTheSocketCheck()
    {
        // With the pre-ping off, dead connections used to reach callers (this test showed the pre-ping test could fail).
        // The socket check costs no round trip, so it stays on: a connection the server closed is still never handed out.
        var options = Options();
        options.PrePing = false;
        using var logs = new CapturedLogs();
        options.LoggerFactory = logs.Factory;
        using var pool = new PgTestPool(nameof(Postgres_WithPrePingOff_TerminatedConnectionsAreStillRetiredByTheSocketCheck), options);
        await FillAsync(pool.DataSource, PoolFill);
        await Pg.TerminateAsync(await pool.ServerPidsAsync());
        await PastTheAliveWindowAsync(pool.Options);

        var failures = await RunQueriesAsync(pool.DataSource);

        Assert.IsEmpty(failures, $"{failures.Count} of {Queries} queries failed; first: {failures.FirstOrDefault()}");
        Assert.HasCount(PoolFill, logs.WithEventId(3004), $"each terminated connection was retired by the socket check:\n{logs.Dump()}");
        Assert.IsEmpty(logs.WithEventId(3001), "no ping ran: the pre-ping is off");
    }

    [TestMethod]
    public async Task Postgres_NpgsqlsOwnPool_SameTermination_ReportsHowManyQueriesFail()
    {
        var applicationName = Pg.NewApplicationName("npgsql-own");
        var builder = new NpgsqlConnectionStringBuilder(Pg.ConnectionString(applicationName)) { Pooling = true, MaxPoolSize = 10 };
        await using var dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        var held = new List<NpgsqlConnection>();
        for (var i = 0; i < PoolFill; i++)
            held.Add(await dataSource.OpenConnectionAsync());
        foreach (var connection in held)
            await connection.DisposeAsync();
        var pids = await Pg.PidsAsync(applicationName);
        Assert.HasCount(PoolFill, pids);

        await Pg.TerminateAsync(pids);
        await Task.Delay(TimeSpan.FromMilliseconds(600));
        var failures = await RunQueriesAsync(async () => await dataSource.OpenConnectionAsync(), callers: 1);

        Console.WriteLine($"Npgsql's own pool: {failures.Count} of {Queries} queries failed after {PoolFill} pooled connections were terminated" +
                          (failures.Count > 0 ? $" (first: {failures[0].GetType().Name}: {failures[0].Message})" : ""));
    }

    // ------------------------------------------------------------------------------------------------ MariaDB

    [TestMethod]
    public async Task MariaDb_EveryIdleConnectionKilled_100QueriesThroughThePoolAllSucceed()
    {
        using var pool = new MySqlTestPool(Options());
        await FillAsync(pool.DataSource, PoolFill);
        var ids = await pool.User.ConnectionIdsAsync();
        Assert.HasCount(PoolFill, ids);

        await MySql.KillAsync(ids);
        await PastTheAliveWindowAsync(pool.Options);
        var failures = await RunQueriesAsync(pool.DataSource);

        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        AssertNoFailures(failures, stats, PoolFill);
        Assert.IsEmpty((await pool.User.ConnectionIdsAsync()).Intersect(ids));
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task MariaDb_AfterAFullServerRestart_100QueriesThroughThePoolAllSucceed()
    {
        using var pool = new MySqlTestPool(Options());
        await FillAsync(pool.DataSource, PoolFill);

        await MySql.RestartAsync();
        await PastTheAliveWindowAsync(pool.Options);
        var failures = await RunQueriesAsync(pool.DataSource);

        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        AssertNoFailures(failures, stats, PoolFill);
        Assert.AreEqual(stats.Total, await pool.ServerConnectionsAsync());
    }

    [TestMethod]
    public async Task MariaDb_MySqlConnectorsOwnPoolWithoutConnectionReset_SameKill_ReportsHowManyQueriesFail()
    {
        using var user = new MySqlTestUser();
        var builder = new MySqlConnectionStringBuilder(user.ConnectionString) { Pooling = true, MaximumPoolSize = 10, ConnectionReset = false };
        await using var dataSource = new MySqlDataSource(builder.ConnectionString);
        var held = new List<MySqlConnection>();
        for (var i = 0; i < PoolFill; i++)
            held.Add(await dataSource.OpenConnectionAsync());
        foreach (var connection in held)
            await connection.DisposeAsync();
        var ids = await user.ConnectionIdsAsync();
        Assert.HasCount(PoolFill, ids);

        await MySql.KillAsync(ids);
        await Task.Delay(TimeSpan.FromMilliseconds(600));
        var failures = await RunQueriesAsync(async () => await dataSource.OpenConnectionAsync(), callers: 1);

        Console.WriteLine($"MySqlConnector's own pool (ConnectionReset=false): {failures.Count} of {Queries} queries failed after {PoolFill} pooled connections were killed" +
                          (failures.Count > 0 ? $" (first: {failures[0].GetType().Name}: {failures[0].Message})" : ""));
    }
}
