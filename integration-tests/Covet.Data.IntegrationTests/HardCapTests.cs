using System.Data.Common;
using System.Text;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// <c>MaxPoolSize</c> is a hard cap on the pool's connections as the <em>server</em> counts them (issue 12; the README's
/// "Scaling out" promises it): under the load a new user would try — 32 workers on a pool of 10, a fifth of the opens
/// cancelled after 0–2 ms, sync and async opens, some borrowers closing with a transaction open, <c>Clear()</c> every
/// 2 s — an observer on its own connection counts the pool's server connections (every 10 ms, or back to back when a
/// count takes longer), and the count never passes <c>MaxPoolSize</c>, except within 300 ms after a <c>Clear()</c>,
/// where a backend the client has already closed may linger briefly on the server. A slot stays taken until its
/// physical connection is really closed, including an open a cancelled caller abandoned mid-way.
/// </summary>
/// <remarks>
/// The defect is a race, so each server gets several short runs, each on a fresh pool: each run's start is a ramp from
/// an empty pool with no Clear() grace, where cancelled creations abound. The issue asked for a count every 50 ms;
/// counting as often as the server answers catches excesses that last a few milliseconds several times as often, and
/// the providers' own pools under the same load (the two control tests below) show it raises no false alarm.
/// Before the fix, on the 2-core VM: MariaDB failed 9 of 12 runs on a quiet machine (every invocation of the test);
/// PostgreSQL 0 of 12 quiet, 4 of 20 under a load average of ~25 — Npgsql honours the cancelled token and drops
/// the abandoned socket within a millisecond, so the excess there needs a delayed continuation to become visible.
/// The counts are filtered by the pool's unique Application Name (PostgreSQL) or its own throwaway user (MariaDB).
/// </remarks>
[TestClass]
public sealed class HardCapTests
{
    private const int MaxPoolSize = 10;
    private const int Workers = 32;
    private const int Runs = 4;
    private static readonly TimeSpan RunLength = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan ClearEvery = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan SampleEvery = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan SlowestObservation = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan AfterClearGrace = TimeSpan.FromMilliseconds(300);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void Postgres_ServerNeverCountsMoreThanMaxPoolSize_UnderCancelledOpensOpenTransactionsAndClears() =>
        RunAll("postgres", run =>
        {
            using var pool = new PgTestPool($"cap{run}", TestOptions.Default(MaxPoolSize));
            return Load(pool.DataSource, Pg.OpenAdmin, "select count(*)::int from pg_stat_activity where application_name = @a",
                new { a = pool.ApplicationName }).Run(seed: run);
        });

    [TestMethod]
    public void MariaDb_ServerNeverCountsMoreThanMaxPoolSize_UnderCancelledOpensOpenTransactionsAndClears() =>
        RunAll("mariadb", run =>
        {
            using var pool = new MySqlTestPool(TestOptions.Default(MaxPoolSize));
            return Load(pool.DataSource, MySql.OpenAdmin, "select count(*) from information_schema.processlist where user = @u",
                new { u = pool.User.Name }).Run(seed: run);
        });

    // The same load on the providers' own pools: the observer and the grace after Clear() are sound (a pool that does
    // hold its cap passes), so a failure above is Covet's.

    [TestMethod]
    public void Postgres_NpgsqlsOwnPool_UnderTheSameLoad_ServerNeverCountsMoreThanMaxPoolSize() =>
        RunAll("postgres (Npgsql's own pool)", run =>
        {
            var applicationName = Pg.NewApplicationName($"npgsql-cap{run}");
            var connectionString = new NpgsqlConnectionStringBuilder(Pg.ConnectionString(applicationName)) { MaxPoolSize = MaxPoolSize }.ConnectionString;
            try
            {
                return Load(() => new NpgsqlConnection(connectionString), () => NpgsqlConnection.ClearPool(new NpgsqlConnection(connectionString)),
                    Pg.OpenAdmin, "select count(*)::int from pg_stat_activity where application_name = @a", new { a = applicationName }).Run(seed: run);
            }
            finally
            {
                NpgsqlConnection.ClearPool(new NpgsqlConnection(connectionString));
            }
        }, runs: 1);

    [TestMethod]
    public void MariaDb_MySqlConnectorsOwnPool_UnderTheSameLoad_ServerNeverCountsMoreThanMaxPoolSize() =>
        RunAll("mariadb (MySqlConnector's own pool)", run =>
        {
            using var user = new MySqlTestUser();
            var connectionString = new MySqlConnectionStringBuilder(user.ConnectionString) { MaximumPoolSize = MaxPoolSize }.ConnectionString;
            try
            {
                return Load(() => new MySqlConnection(connectionString), () => MySqlConnection.ClearPool(new MySqlConnection(connectionString)),
                    MySql.OpenAdmin, "select count(*) from information_schema.processlist where user = @u", new { u = user.Name }).Run(seed: run);
            }
            finally
            {
                MySqlConnection.ClearPool(new MySqlConnection(connectionString));
            }
        }, runs: 1);

    private static CapLoad Load(CovetDataSource dataSource, Func<DbConnection> openObserver, string countSql, object countParameters) =>
        Load(dataSource.CreateConnection, dataSource.Clear, openObserver, countSql, countParameters);

    private static CapLoad Load(Func<DbConnection> createConnection, Action clear, Func<DbConnection> openObserver, string countSql, object countParameters) => new()
    {
        Workers = Workers,
        Length = RunLength,
        ClearEvery = ClearEvery,
        SampleEvery = SampleEvery,
        CreateConnection = createConnection,
        Clear = clear,
        OpenObserver = openObserver,
        CountSql = countSql,
        CountParameters = countParameters,
    };

    private void RunAll(string server, Func<int, CapLoad.Result> run, int runs = Runs)
    {
        var report = new StringBuilder();
        var failedRuns = 0;
        var unexpected = new List<string>();
        for (var r = 1; r <= runs; r++)
        {
            var result = run(r);
            var over = result.Samples.Where(s => s.Count > MaxPoolSize && !WithinGraceOfAClear(s, result.Clears)).ToList();
            if (over.Count > 0)
                failedRuns++;
            report.AppendLine($"run {r}: {result.Samples.Count} samples, max {result.Samples.Max(s => s.Count)}, " +
                $"{over.Count} above {MaxPoolSize} outside the {AfterClearGrace.TotalMilliseconds:F0} ms after a Clear()" +
                (over.Count == 0 ? "" : $" (at {string.Join(", ", over.Take(8).Select(s => $"{s.From.TotalMilliseconds:F0} ms: {s.Count}"))})") +
                $"; clears at {string.Join(", ", result.Clears.Select(c => $"{c.TotalMilliseconds:F0}"))} ms; " +
                $"{result.Operations} operations ({result.OpenTransactionsLeft} closed with a transaction open), {result.CancelledOpens} cancelled opens");
            unexpected.AddRange(result.Unexpected.Select(u => $"run {r}: {u}"));

            // The load really happened, or a pass would mean nothing.
            Assert.IsGreaterThanOrEqualTo((int)(RunLength / SlowestObservation), result.Samples.Count, $"the observer sampled too rarely:\n{report}");
            Assert.IsNotEmpty(result.Clears, $"no Clear() ran:\n{report}");
            Assert.IsGreaterThan(0, result.CancelledOpens, $"no open was cancelled:\n{report}");
            Assert.IsGreaterThan(0, result.OpenTransactionsLeft, $"no borrower closed with a transaction open:\n{report}");
        }
        TestContext.WriteLine($"{server}, {Workers} workers on MaxPoolSize {MaxPoolSize}, {runs} runs of {RunLength.TotalSeconds:F0} s:\n{report}");
        Assert.IsEmpty(unexpected, $"operations that were not cancelled failed:\n{string.Join("\n", unexpected.Take(10))}\n{report}");
        Assert.AreEqual(0, failedRuns,
            $"{server}: the server counted more than MaxPoolSize = {MaxPoolSize} connections of the pool in {failedRuns} of {runs} runs:\n{report}");
    }

    /// <summary>A sample sent within the grace period after a Clear() began (or while one began).</summary>
    private static bool WithinGraceOfAClear(CapLoad.Sample sample, IReadOnlyList<TimeSpan> clears) =>
        clears.Any(c => c <= sample.To && sample.From - c <= AfterClearGrace);
}
