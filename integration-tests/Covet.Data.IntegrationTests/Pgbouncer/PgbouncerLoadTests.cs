using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Dapper;
using Npgsql;

namespace Covet.Data.IntegrationTests.Pgbouncer;

/// <summary>
/// Three "app instances" (three Covet data sources, MaxPoolSize 20 each, 64 concurrent workers each) share one
/// PostgreSQL through pgbouncer in transaction mode with <c>default_pool_size = 10</c>: 60 client connections multiplexed
/// over at most 10 server connections, with no errors. For comparison the same load also runs with Covet's reset on
/// (it still works: the DISCARD ALL travels with the next command, so pgbouncer routes no extra transaction for it), and
/// directly against PostgreSQL, once with the same 3 x 20 connections (60 server connections) and once with 4+3+3 (the 10
/// server connections pgbouncer uses). The numbers are printed (and quoted in SCALING-OUT.md); they come from a small
/// shared box, so only their shape is asserted.
/// </summary>
[TestClass]
public sealed class PgbouncerLoadTests
{
    private const int Instances = 3;
    private const int MaxPoolSizePerInstance = 20;
    private const int WorkersPerInstance = 64;
    private const int IterationsPerWorker = 40;   // every 4th is a transaction, the others one autocommit query

    [ClassInitialize]
    public static void RequirePgbouncer(TestContext context)
    {
        _ = context;
        Pgb.RequireReachable();
    }

    private sealed record PhaseResult(
        string Name, bool ViaPgbouncer, bool Reset, int Borrows, long Errors, IReadOnlyList<string> FirstErrors, TimeSpan Elapsed,
        int MaxCovetPhysical, int MaxCovetWaiting, int MaxBackends, int MaxBusyBackends, int MaxPgbouncerServers,
        long PgbouncerTransactions, long PgbouncerQueries, TimeSpan WorstAcquireP99, IReadOnlyList<CovetPoolStatistics> Stats)
    {
        public double BorrowsPerSecond => Borrows / Elapsed.TotalSeconds;
    }

    [TestMethod]
    public async Task ThreeInstancesOf20Connections_ShareTenServerConnectionsThroughPgbouncer_WithoutErrors()
    {
        var table = Sql.UniqueTable("load");
        await using (var setup = Pg.OpenAdmin())
            await setup.ExecuteAsync($"create table {table} (phase text not null, instance int not null, worker int not null, n int not null)");
        var results = new List<PhaseResult>();
        try
        {
            int[] twenty = [MaxPoolSizePerInstance, MaxPoolSizePerInstance, MaxPoolSizePerInstance];
            // Not reported: the first run of this code in the process pays for JIT and pgbouncer's first server logins.
            await RunPhaseAsync("warm-up", Pgb.ConnectionString, viaPgbouncer: true, reset: false, table, twenty, iterations: 8);
            results.Add(await RunPhaseAsync("pgbouncer, reset off", Pgb.ConnectionString, viaPgbouncer: true, reset: false, table, twenty));
            results.Add(await RunPhaseAsync("pgbouncer, reset on", Pgb.ConnectionString, viaPgbouncer: true, reset: true, table, twenty));
            results.Add(await RunPhaseAsync("direct, 3 x 20", Pg.BaseConnectionString, viaPgbouncer: false, reset: false, table, twenty));
            // The same 10 server connections as pgbouncer's pool, without pgbouncer: per-instance max sized so the sum fits.
            results.Add(await RunPhaseAsync("direct, 4+3+3", Pg.BaseConnectionString, viaPgbouncer: false, reset: false, table, [4, 3, 3]));
        }
        finally
        {
            await using var cleanup = Pg.OpenAdmin();
            await cleanup.ExecuteAsync($"drop table if exists {table}");
        }

        Console.WriteLine($"{Instances} instances x MaxPoolSize {MaxPoolSizePerInstance} (last phase 4+3+3) x {WorkersPerInstance} workers x {IterationsPerWorker} borrows " +
                          $"(1 in 4 a transaction: SET LOCAL + insert + select + commit); pgbouncer {PgbouncerVersion()} pool_mode=transaction default_pool_size={Pgb.PoolSize}");
        Console.WriteLine("phase                  borrows  errors  seconds  borrows/s  covet-physical  covet-waiting  pg-backends(busy)  pgb-servers  pgb-xacts  pgb-queries  acquire-p99");
        foreach (var r in results)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Name,-22} {r.Borrows,7} {r.Errors,7} {r.Elapsed.TotalSeconds,8:F2} {r.BorrowsPerSecond,10:F0} {r.MaxCovetPhysical,15} {r.MaxCovetWaiting,14} " +
                $"{r.MaxBackends,11}({r.MaxBusyBackends,3}) {(r.ViaPgbouncer ? r.MaxPgbouncerServers.ToString(CultureInfo.InvariantCulture) : "-"),12} " +
                $"{(r.ViaPgbouncer ? r.PgbouncerTransactions.ToString(CultureInfo.InvariantCulture) : "-"),10} {(r.ViaPgbouncer ? r.PgbouncerQueries.ToString(CultureInfo.InvariantCulture) : "-"),12} " +
                $"{r.WorstAcquireP99.TotalMilliseconds,9:F1} ms"));
        Console.WriteLine($"pg-backends: most backends PostgreSQL showed at once (busy: not idle) — pgbouncer's (usename {Pgb.ServerUser}), or directly the " +
                          "phase's application names; pgb-*: pgbouncer's SHOW POOLS (after the phase) and SHOW STATS (delta) for database covet " +
                          "(a DISCARD ALL sent with the next command is not a transaction or query of its own there)");

        foreach (var r in results)
        {
            Assert.AreEqual(0L, r.Errors, $"{r.Name}: {string.Join("\n", r.FirstErrors)}");
            foreach (var s in r.Stats)
            {
                Assert.IsLessThanOrEqualTo(MaxPoolSizePerInstance, s.Total, $"{r.Name}: {s}");
                Assert.AreEqual(0L, s.AcquireTimeouts, $"{r.Name}: {s}");
                Assert.AreEqual(0L, s.ResetFailures, $"{r.Name}: {s}");
                Assert.AreEqual(0L, s.PrePingFailures, $"{r.Name}: {s}");
            }
        }
        var off = results[0];
        Assert.IsGreaterThan(Pgb.PoolSize, off.MaxCovetPhysical, "more Covet connections to pgbouncer than pgbouncer has server connections: it multiplexed them");
        Assert.IsGreaterThan(0, off.MaxBackends, "the sampler saw the load's backends");
        Assert.IsLessThanOrEqualTo(Pgb.PoolSize, off.MaxBackends, "PostgreSQL never saw more than default_pool_size backends for the load");
        foreach (var r in results.Where(r => r.ViaPgbouncer))
            Assert.IsLessThanOrEqualTo(Pgb.PoolSize, r.MaxPgbouncerServers, $"{r.Name}: pgbouncer never held more than default_pool_size server connections");
        Assert.IsLessThanOrEqualTo(Instances * MaxPoolSizePerInstance, results[2].MaxBackends);
        Assert.IsLessThanOrEqualTo(10, results[3].MaxBackends, "direct with per-instance max 4+3+3: at most 10 server connections");
    }

    /// <summary>
    /// The load above with Dapper opening and closing each connection itself (the usual Dapper style): fails, with or
    /// without pgbouncer, because of a Covet bug. Dapper runs such a query with CommandBehavior.CloseConnection, so Covet
    /// wraps the reader (CovetDbDataReader); its Dispose/DisposeAsync first closes the logical connection — handing the
    /// physical one to the next borrower — and only then disposes Npgsql's reader. Npgsql reuses one reader object per
    /// physical connection, so that late Dispose lands on the next borrower's active reader: it consumes that borrower's
    /// results or ends its "user action" (ArgumentOutOfRangeException in NpgsqlDataReader, "A command is already in
    /// progress", "Connection is busy", "Received backend message ParseComplete while expecting ReadyForQuery"), and the
    /// desynchronised connection goes back to the pool and fails everyone after it. Disposing the inner reader before
    /// closing the logical connection fixes it (verified on a patched copy: 0 errors in 8 runs, against 5 failing runs of 6).
    /// </summary>
    [TestMethod]
    [DataRow(true, DisplayName = "through pgbouncer")]
    [DataRow(false, DisplayName = "directly")]
    public async Task DapperOpenedConnections_UnderContention_NeverCrossTalk(bool viaPgbouncer)
    {
        var options = TestOptions.Default(maxPoolSize: 4);
        options.ResetSessionOnReturn = false;
        options.AcquireTimeout = TimeSpan.FromSeconds(60);
        options.DefaultCommandTimeout = TimeSpan.FromSeconds(5); // a desynchronised reader waits for its command timeout
        var baseConnectionString = viaPgbouncer ? Pgb.ConnectionString : Pg.BaseConnectionString;
        using var pool = new PgbTestPool("dapper-race", options, baseConnectionString);
        long errors = 0;
        var first = new ConcurrentQueue<string>();
        await Task.WhenAll(Enumerable.Range(0, 64).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; i < 300; i++)
            {
                try
                {
                    await using var connection = pool.DataSource.CreateConnection();   // closed: Dapper opens and closes it
                    var value = worker * 100_000 + i;
                    var echoed = await connection.QuerySingleAsync<int>("select @value", new { value });
                    if (echoed != value)
                        throw new InvalidOperationException($"sent {value}, read {echoed}");
                }
                catch (Exception e)
                {
                    if (Interlocked.Increment(ref errors) <= 3)
                        first.Enqueue($"worker {worker} iteration {i}: {e.GetType().Name}: {e.Message}");
                }
            }
        })));
        Assert.AreEqual(0L, errors, string.Join("\n", first));
    }

    private static async Task<PhaseResult> RunPhaseAsync(string name, string baseConnectionString, bool viaPgbouncer, bool reset, string table, int[] maxPerInstance,
        int iterations = IterationsPerWorker)
    {
        var tag = $"cv-load-{(viaPgbouncer ? "pgb" : "pg")}-{(reset ? "on" : "off")}-{Guid.NewGuid():N}"[..40] + "-";
        var pools = Enumerable.Range(0, Instances).Select(i =>
        {
            var options = TestOptions.Default(maxPerInstance[i]);
            options.ResetSessionOnReturn = reset;
            options.AcquireTimeout = TimeSpan.FromSeconds(60);
            options.PoolName = tag + i;
            var cs = new NpgsqlConnectionStringBuilder(baseConnectionString) { ApplicationName = tag + i }.ConnectionString;
            return CovetDataSource.Create(NpgsqlFactory.Instance, cs, options);
        }).ToArray();
        try
        {
            // Warm-up, not measured: every instance opens its 20 connections (logins, SCRAM, Npgsql's type loading) and
            // pgbouncer its server connections, so the phases compare steady states.
            await Task.WhenAll(pools.Select(async (pool, i) =>
            {
                var held = await Task.WhenAll(Enumerable.Range(0, maxPerInstance[i]).Select(async _ =>
                {
                    var connection = pool.CreateConnection();
                    await connection.OpenAsync();
                    await connection.ExecuteScalarAsync<int>("select 1");
                    return connection;
                }));
                foreach (var connection in held)
                    await connection.DisposeAsync();
            }));
            foreach (var pool in pools)
                await Poll.UntilNothingInUseAsync(pool);

            var before = viaPgbouncer ? PgbouncerConsole.Totals("covet") : default;
            long errors = 0;
            var firstErrors = new ConcurrentQueue<string>();
            int maxPhysical = 0, maxWaiting = 0, maxBackends = 0, maxBusy = 0, maxServers = 0;
            using var stop = new CancellationTokenSource();

            var sampler = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var stats = pools.Select(p => p.GetStatistics()).ToArray();
                    maxPhysical = Math.Max(maxPhysical, stats.Sum(s => s.Total));
                    maxWaiting = Math.Max(maxWaiting, stats.Sum(s => s.Waiting));
                    var (all, busy) = viaPgbouncer ? await Pgb.ServerBackendsAsync() : await Pgb.BackendsAsync(tag);
                    maxBackends = Math.Max(maxBackends, all);
                    maxBusy = Math.Max(maxBusy, busy);
                    await Task.Delay(50);
                }
            });
            var clock = new Stopwatch();

            async Task Worker(int instance, int worker)
            {
                var dataSource = pools[instance];
                var transactions = 0;
                for (var i = 0; i < iterations; i++)
                {
                    try
                    {
                        // Opened explicitly: letting Dapper open and close the connection under contention trips a Covet
                        // bug (see DapperOpenedConnections_UnderContention_... below), which has nothing to do with pgbouncer.
                        await using var connection = dataSource.CreateConnection();
                        await connection.OpenAsync();
                        if (i % 4 != 3)
                        {
                            var value = instance * 1_000_000 + worker * 1_000 + i;
                            var echoed = await connection.QuerySingleAsync<int>("select @value", new { value });
                            if (echoed != value)
                                throw new InvalidOperationException($"sent {value}, read {echoed}");
                            continue;
                        }
                        await using var tx = await connection.BeginTransactionAsync();
                        await connection.ExecuteAsync("set local statement_timeout = '20s'", transaction: tx);
                        await connection.ExecuteAsync($"insert into {table} (phase, instance, worker, n) values (@tag, @instance, @worker, @i)",
                            new { tag, instance, worker, i }, tx);
                        var mine = await connection.ExecuteScalarAsync<long>($"select count(*) from {table} where phase = @tag and instance = @instance and worker = @worker",
                            new { tag, instance, worker }, tx);
                        if (mine != transactions + 1)
                            throw new InvalidOperationException($"instance {instance} worker {worker} sees {mine} of its rows, expected {transactions + 1}");
                        await tx.CommitAsync();
                        transactions++;
                    }
                    catch (Exception e)
                    {
                        if (Interlocked.Increment(ref errors) <= 5)
                            firstErrors.Enqueue($"instance {instance} worker {worker} iteration {i} after {clock.Elapsed.TotalSeconds:F1} s: {e}");
                    }
                }
            }

            clock.Start();
            await Task.WhenAll(Enumerable.Range(0, Instances).SelectMany(instance =>
                Enumerable.Range(0, WorkersPerInstance).Select(worker => Task.Run(() => Worker(instance, worker)))));
            clock.Stop();
            await stop.CancelAsync();
            await sampler;
            if (viaPgbouncer)
            {
                // pgbouncer keeps the server connections it opened (server_idle_timeout is 10 min): what it holds now is
                // the most it held during the phase. (Read after the load: psql is a process to start, and the box is small.)
                var bouncer = PgbouncerConsole.Pool("covet");
                maxServers = bouncer.Servers;
            }

            var after = viaPgbouncer ? PgbouncerConsole.Totals("covet") : default;
            var final = new List<CovetPoolStatistics>();
            foreach (var pool in pools)
                final.Add(await Poll.UntilNothingInUseAsync(pool));
            await using (var check = Pg.OpenAdmin())
            {
                var rows = await check.ExecuteScalarAsync<long>($"select count(*) from {table} where phase = @tag", new { tag });
                if (Interlocked.Read(ref errors) == 0 && rows != Instances * WorkersPerInstance * (iterations / 4))
                    firstErrors.Enqueue($"{rows} rows committed, expected {Instances * WorkersPerInstance * (iterations / 4)}");
                if (firstErrors.Count > 0 && errors == 0)
                    errors = 1;
            }
            return new PhaseResult(name, viaPgbouncer, reset, Instances * WorkersPerInstance * iterations, errors, firstErrors.ToArray(), clock.Elapsed,
                maxPhysical, maxWaiting, maxBackends, maxBusy, maxServers,
                after.Transactions - before.Transactions, after.Queries - before.Queries,
                final.Max(s => s.AcquireP99), final);
        }
        finally
        {
            foreach (var pool in pools)
                pool.Dispose();
        }
    }

    private static string PgbouncerVersion()
    {
        try
        {
            return PgbouncerConsole.Show("VERSION").Single()["version"];
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException)
        {
            return "(version unknown)";
        }
    }
}
