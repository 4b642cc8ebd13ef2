using System.Data.Common;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Issue 13's acceptance: no dead connection is handed out, even one the server killed a moment before checkout.
/// A pool of 20 idle connections, each dirty (it ran a query; on PostgreSQL it carries a queued <c>DISCARD ALL</c>), is
/// killed server-side right after the returns; then 100 queries start at once. Every failed query is a dead connection
/// that reached a caller. The kill happens inside the alive window (there is no delay), which is exactly where today's
/// pool skips the pre-ping.
/// </summary>
/// <remarks>
/// <para>Two timings of the kill. <b>Exited</b>: the kill waits until each server session has gone
/// (<c>pg_terminate_backend(pid, timeout)</c>; MariaDB's processlist no longer lists it), so the server has closed its
/// side before the first query: deterministic. <b>Immediate</b>: the kill is issued within a few milliseconds of the
/// returns and the queries start as soon as it returns, with the sessions still exiting (the real case: a failover or
/// an administrator's kill does not wait for anybody).</para>
/// <para>Each scenario repeats <see cref="Rounds"/> times (2,000 queries), refilling the pool in between, and prints
/// its failure count before asserting, so the rate is visible when it fails.</para>
/// </remarks>
[TestClass]
public sealed class KilledIdleConnectionTests
{
    private const int PoolFill = 20;
    private const int Queries = 100;
    private const int Rounds = 20;

    private static CovetPoolOptions Options() => TestOptions.Default(maxPoolSize: PoolFill);

    /// <summary>One server under test: its pool, the ids of that pool's server sessions, and how to kill them.</summary>
    private interface ITarget : IAsyncDisposable
    {
        string Name { get; }
        CovetDataSource DataSource { get; }
        Task<IReadOnlyList<long>> SessionIdsAsync();
        /// <summary>Kills the sessions; with <paramref name="waitUntilExited"/>, returns only once each has gone.</summary>
        Task KillAsync(IReadOnlyList<long> ids, bool waitUntilExited);
        Task RestartAsync();
    }

    private sealed class PgTarget : ITarget
    {
        private readonly PgTestPool _pool = new("killed-idle", Options());
        private readonly NpgsqlConnection _admin = Pg.OpenAdmin(); // open already, so the kill is one round trip

        public string Name => "PostgreSQL";
        public CovetDataSource DataSource => _pool.DataSource;

        public async Task<IReadOnlyList<long>> SessionIdsAsync() => (await _pool.ServerPidsAsync()).Select(p => (long)p).ToList();

        public async Task KillAsync(IReadOnlyList<long> ids, bool waitUntilExited)
        {
            // pg_terminate_backend(pid) signals the backend and returns at once. All are signalled first, in one statement.
            await using (var command = new NpgsqlCommand("select count(*) filter (where pg_terminate_backend(pid)) from unnest(@pids) as pid", _admin))
            {
                command.Parameters.AddWithValue("pids", ids.Select(i => (int)i).ToArray());
                Assert.AreEqual((long)ids.Count, (long)(await command.ExecuteScalarAsync())!, "every backend of the pool was signalled");
            }
            if (!waitUntilExited)
                return;
            // Then pg_terminate_backend(pid, timeout) waits for each backend still listed until its process has exited (it
            // polls in 100 ms steps, so waiting for each in turn would leave the alive window; the signals went out
            // together, so one wait covers nearly all). A backend listed no more has already sent its FATAL message:
            // PostgreSQL sends it before the process leaves the process array (and closes the socket after).
            await using (var command = new NpgsqlCommand(
                             "select count(*) from (select pg_terminate_backend(pid, 10000) from pg_stat_activity where pid = any(@pids)) as waited", _admin))
            {
                command.Parameters.AddWithValue("pids", ids.Select(i => (int)i).ToArray());
                await command.ExecuteScalarAsync();
            }
        }

        public Task RestartAsync() => Pg.RestartAsync();

        public async ValueTask DisposeAsync()
        {
            await _admin.DisposeAsync();
            _pool.Dispose();
        }
    }

    private sealed class MariaDbTarget : ITarget
    {
        private readonly MySqlTestPool _pool = new(Options());
        private readonly MySqlConnection _admin = MySql.OpenAdmin();

        public string Name => "MariaDB";
        public CovetDataSource DataSource => _pool.DataSource;

        public async Task<IReadOnlyList<long>> SessionIdsAsync() => await _pool.User.ConnectionIdsAsync();

        public async Task KillAsync(IReadOnlyList<long> ids, bool waitUntilExited)
        {
            foreach (var id in ids)
            {
                await using var command = new MySqlCommand($"KILL CONNECTION {id}", _admin);
                try
                {
                    await command.ExecuteNonQueryAsync();
                }
                catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.NoSuchThread)
                {
                    // gone already (a failed background reset destroyed it)
                }
            }
            if (waitUntilExited)
                await Poll.UntilAsync(async () => !(await SessionIdsAsync()).Intersect(ids).Any(), "killed MariaDB sessions to leave the processlist");
        }

        public Task RestartAsync() => MySql.RestartAsync();

        public async ValueTask DisposeAsync()
        {
            await _admin.DisposeAsync();
            _pool.Dispose();
        }
    }

    private static ITarget Create(string server) => server switch
    {
        "pg" => new PgTarget(),
        "mariadb" => new MariaDbTarget(),
        _ => throw new ArgumentOutOfRangeException(nameof(server), server, null),
    };

    /// <summary>
    /// Opens <see cref="PoolFill"/> connections together, runs a query on each (so each is returned dirty), and returns the
    /// server ids of the pool's sessions, read while they are all held (so the kill afterwards is one step).
    /// </summary>
    private static async Task<(List<CovetDbConnection> Held, IReadOnlyList<long> Ids)> HoldDirtyAsync(ITarget target)
    {
        await Poll.UntilNothingInUseAsync(target.DataSource);
        var held = new List<CovetDbConnection>();
        for (var i = 0; i < PoolFill; i++)
        {
            var connection = target.DataSource.CreateConnection();
            await connection.OpenAsync();
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = "select 1";
                await command.ExecuteScalarAsync();
            }
            held.Add(connection);
        }
        var ids = await target.SessionIdsAsync();
        Assert.HasCount(PoolFill, ids, $"{target.Name}: the pool holds {PoolFill} server sessions");
        return (held, ids);
    }

    private static async Task ReturnAllAsync(List<CovetDbConnection> held)
    {
        foreach (var connection in held)
            await connection.DisposeAsync();
    }

    /// <summary>Starts <see cref="Queries"/> open + query + close at once; returns the failures.</summary>
    private static async Task<List<Exception>> QueriesAtOnceAsync(CovetDataSource dataSource, Action? alongside = null)
    {
        var failures = new List<Exception>();
        var queries = Enumerable.Range(0, Queries).Select(async _ =>
        {
            await Task.Yield();
            try
            {
                await using var connection = dataSource.CreateConnection();
                await connection.OpenAsync();
                await using var command = connection.CreateCommand();
                command.CommandText = "select 1";
                Assert.AreEqual(1L, Convert.ToInt64(await command.ExecuteScalarAsync()));
            }
            catch (DbException e)
            {
                lock (failures)
                    failures.Add(e);
            }
        }).ToList();
        alongside?.Invoke();
        await Task.WhenAll(queries);
        return failures;
    }

    private static async Task RoundsAsync(string server, bool waitUntilExited)
    {
        await using var target = Create(server);
        var failedPerRound = new List<int>();
        var samples = new List<string>();
        for (var round = 0; round < Rounds; round++)
        {
            var (held, ids) = await HoldDirtyAsync(target);
            await ReturnAllAsync(held);
            await target.KillAsync(ids, waitUntilExited);
            var failures = await QueriesAtOnceAsync(target.DataSource);
            failedPerRound.Add(failures.Count);
            samples.AddRange(failures.Take(2).Select(e => $"{e.GetType().Name}: {e.Message}"));
            await Poll.UntilNothingInUseAsync(target.DataSource);
        }
        var total = failedPerRound.Sum();
        var stats = target.DataSource.GetStatistics();
        Console.WriteLine($"{target.Name}, kill {(waitUntilExited ? "waited until exited" : "immediate")}: {total} of {Rounds * Queries} queries failed " +
                          $"(per round: {string.Join(",", failedPerRound)}); pre-ping failures {stats.PrePingFailures}; {stats}");
        foreach (var sample in samples.Distinct().Take(3))
            Console.WriteLine($"  {sample}");
        Assert.AreEqual(0, total, $"{target.Name}: {total} of {Rounds * Queries} queries got a dead connection; first: {samples.FirstOrDefault()}");
        Assert.AreEqual(stats.Total, stats.Idle + stats.InUse);
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public Task Postgres_AllIdleTerminatedAndExited_100QueriesAtOnce_NoneFails_20Rounds() => RoundsAsync("pg", waitUntilExited: true);

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public Task Postgres_AllIdleTerminatedRightAfterReturn_100QueriesAtOnce_NoneFails_20Rounds() => RoundsAsync("pg", waitUntilExited: false);

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public Task MariaDb_AllIdleKilledAndGone_100QueriesAtOnce_NoneFails_20Rounds() => RoundsAsync("mariadb", waitUntilExited: true);

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public Task MariaDb_AllIdleKilledRightAfterReturn_100QueriesAtOnce_NoneFails_20Rounds() => RoundsAsync("mariadb", waitUntilExited: false);

    // ------------------------------------------------------------------------------------------------ server restart

    private static async Task RestartAsync(string server)
    {
        await using var target = Create(server);
        var (held, _) = await HoldDirtyAsync(target);
        await ReturnAllAsync(held);
        await target.RestartAsync();
        var failures = await QueriesAtOnceAsync(target.DataSource);
        var stats = await Poll.UntilNothingInUseAsync(target.DataSource);
        Console.WriteLine($"{target.Name}, full restart inside the alive window: {failures.Count} of {Queries} queries failed; {stats}" +
                          (failures.Count > 0 ? $"; first: {failures[0].GetType().Name}: {failures[0].Message}" : ""));
        Assert.IsEmpty(failures, $"{target.Name}: {failures.Count} of {Queries} queries failed after the restart; first: {failures.FirstOrDefault()}");
    }

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public Task Postgres_AfterAFullRestart_100QueriesAtOnce_NoneFails() => RestartAsync("pg");

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public Task MariaDb_AfterAFullRestart_100QueriesAtOnce_NoneFails() => RestartAsync("mariadb");

    // ------------------------------------------------------------------------------------------------ ClearPool racing returns

    /// <summary>
    /// The application's reaction to an outage: <c>ClearPool</c>. Twenty borrowers hold connections whose sessions were
    /// killed; they return them while the pool is cleared and 100 new queries start, all at once. A connection returned
    /// just before, during or just after the clear must never reach one of the 100.
    /// </summary>
    private static async Task ClearRacingReturnsAsync(string server)
    {
        await using var target = Create(server);
        var failedPerRound = new List<int>();
        for (var round = 0; round < 5; round++)
        {
            var (held, ids) = await HoldDirtyAsync(target);
            await target.KillAsync(ids, waitUntilExited: true);
            using var start = new ManualResetEventSlim();
            var returns = held.Select(c => Task.Run(async () =>
            {
                start.Wait();
                await c.DisposeAsync();
            })).ToList();
            var clear = Task.Run(() =>
            {
                start.Wait();
                target.DataSource.Clear();
            });
            var failures = await QueriesAtOnceAsync(target.DataSource, alongside: start.Set);
            await Task.WhenAll(returns.Append(clear));
            failedPerRound.Add(failures.Count);
            if (failures.Count > 0)
                Console.WriteLine($"  round {round}: first: {failures[0].GetType().Name}: {failures[0].Message}");
            await Poll.UntilNothingInUseAsync(target.DataSource);
        }
        Console.WriteLine($"{target.Name}, ClearPool racing returns of killed connections: failed per round of {Queries}: {string.Join(",", failedPerRound)}");
        Assert.AreEqual(0, failedPerRound.Sum(), $"{target.Name}: queries failed while ClearPool raced the returns");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public Task Postgres_ClearPoolRacingReturnsOfKilledConnections_NoQueryFails() => ClearRacingReturnsAsync("pg");

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public Task MariaDb_ClearPoolRacingReturnsOfKilledConnections_NoQueryFails() => ClearRacingReturnsAsync("mariadb");
}
