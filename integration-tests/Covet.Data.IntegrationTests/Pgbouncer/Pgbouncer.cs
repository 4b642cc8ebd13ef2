using System.Diagnostics;
using Dapper;
using Npgsql;

namespace Covet.Data.IntegrationTests.Pgbouncer;

/// <summary>
/// The pgbouncer that <c>scripts/servers.sh start</c> runs in front of the test PostgreSQL: 127.0.0.1:56432,
/// <c>pool_mode = transaction</c>, two databases over the PostgreSQL database <c>covet</c>:
/// <list type="bullet">
/// <item><c>covet</c> ($COVET_TEST_PGBOUNCER): <c>default_pool_size</c> ($COVET_TEST_PGBOUNCER_POOL_SIZE, 10) server connections,
/// logged in to PostgreSQL as $COVET_TEST_PGBOUNCER_SERVER_USER (<c>covet_pgbouncer</c>);</item>
/// <item><c>covet_single</c> ($COVET_TEST_PGBOUNCER_SINGLE): <c>pool_size = 1</c>, so every client's transactions run on the
/// same backend one after the other, which makes the session-state hazards of transaction pooling deterministic.</item>
/// </list>
/// Server connections are counted on PostgreSQL itself (<c>pg_stat_activity</c> over a direct, unpooled admin connection):
/// for database <c>covet</c> pgbouncer logs in to PostgreSQL as its own role, so its backends are the ones with that
/// usename; pgbouncer also gives a server connection the <c>application_name</c> of the client
/// it serves (a parameter it tracks), so a backend carries the name of the last pool under test that used it.
/// </summary>
internal static class Pgb
{
    public const string Variable = "COVET_TEST_PGBOUNCER";
    public const string SingleVariable = "COVET_TEST_PGBOUNCER_SINGLE";
    public const string PoolSizeVariable = "COVET_TEST_PGBOUNCER_POOL_SIZE";
    public const string RestartVariable = "COVET_TEST_PGBOUNCER_RESTART";
    public const string ServerUserVariable = "COVET_TEST_PGBOUNCER_SERVER_USER";

    public static string ConnectionString => Env.Require(Variable);
    public static string SingleConnectionString => Env.Require(SingleVariable);
    public static int PoolSize => int.Parse(Env.Require(PoolSizeVariable), System.Globalization.CultureInfo.InvariantCulture);
    public static string ServerUser => Env.Require(ServerUserVariable);

    /// <summary>
    /// For every [ClassInitialize] of this folder: fails the class, with instructions, unless both pgbouncer databases answer
    /// and behave like a transaction-mode pooler (two clients, both connected, take turns on the single server connection
    /// of <c>covet_single</c>; a session-mode pooler would make the second one wait for the first to disconnect).
    /// </summary>
    public static void RequireReachable()
    {
        string main, single;
        try
        {
            main = ConnectionString;
            single = SingleConnectionString;
            _ = PoolSize;
            _ = ServerUser;
            _ = Env.Require(RestartVariable);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException(
                $"{e.Message} The pgbouncer tests also need ${Variable}, ${SingleVariable}, ${PoolSizeVariable}, ${ServerUserVariable} and ${RestartVariable}, which " +
                "`scripts/servers.sh env` exports since servers.sh starts pgbouncer: restart the servers with the current " +
                "scripts/servers.sh (`scripts/servers.sh start && eval \"$(scripts/servers.sh env)\"`).", e);
        }
        try
        {
            using var first = OpenUnpooled(single, "covet-it-pgb-probe-1");
            using var second = OpenUnpooled(single, "covet-it-pgb-probe-2");
            var firstPid = first.ExecuteScalar<int>("select pg_backend_pid()", commandTimeout: 5);
            var secondPid = second.ExecuteScalar<int>("select pg_backend_pid()", commandTimeout: 5);
            if (firstPid != secondPid)
                throw new InvalidOperationException($"two clients of {SingleVariable} ran on backends {firstPid} and {secondPid}: its pool is not one server connection");
            if (first.ProcessID == firstPid)
                throw new InvalidOperationException("the client's process id is the backend's: this is PostgreSQL itself, not pgbouncer");
            using var viaMain = OpenUnpooled(main, "covet-it-pgb-probe-3");
            var serverUser = viaMain.ExecuteScalar<string>("select session_user", commandTimeout: 5);
            if (serverUser != ServerUser)
                throw new InvalidOperationException($"pgbouncer logs in to PostgreSQL as {serverUser}, not ${ServerUserVariable} ({ServerUser})");
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or System.Net.Sockets.SocketException)
        {
            throw new InvalidOperationException(
                $"pgbouncer is not usable through ${Variable} ({Env.DescribeWithoutPassword(main)}) / ${SingleVariable}: {e.Message}. " +
                "Start it with `scripts/servers.sh start && eval \"$(scripts/servers.sh env)\"` (it runs PostgreSQL, MariaDB and " +
                "pgbouncer in transaction mode); see the pgbouncer log in the temp dir that `scripts/servers.sh status` names.", e);
        }
    }

    /// <summary>A plain Npgsql connection through pgbouncer, without Npgsql's pool (for probes and set-up).</summary>
    public static NpgsqlConnection OpenUnpooled(string connectionString, string applicationName)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString)
        {
            Pooling = false,
            ApplicationName = applicationName,
            Timeout = 5,
        }.ConnectionString);
        connection.Open();
        return connection;
    }

    /// <summary>Backends on PostgreSQL whose application_name starts with <paramref name="prefix"/>: (all, not idle).</summary>
    public static async Task<(int All, int Busy)> BackendsAsync(string prefix)
    {
        await using var connection = Pg.OpenAdmin();
        await using var command = new NpgsqlCommand(
            "select count(*), count(*) filter (where state <> 'idle') from pg_stat_activity " +
            "where backend_type = 'client backend' and starts_with(application_name, @p)", connection);
        command.Parameters.AddWithValue("p", prefix);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return ((int)reader.GetInt64(0), (int)reader.GetInt64(1));
    }

    /// <summary>pgbouncer's backends on PostgreSQL (usename = $COVET_TEST_PGBOUNCER_SERVER_USER): (all, not idle).</summary>
    public static async Task<(int All, int Busy)> ServerBackendsAsync()
    {
        await using var connection = Pg.OpenAdmin();
        await using var command = new NpgsqlCommand(
            "select count(*), count(*) filter (where state <> 'idle') from pg_stat_activity " +
            "where backend_type = 'client backend' and usename = @u", connection);
        command.Parameters.AddWithValue("u", ServerUser);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return ((int)reader.GetInt64(0), (int)reader.GetInt64(1));
    }

    /// <summary>PostgreSQL's clock (timestamps to compare with pg_stat_activity's).</summary>
    public static DateTime ServerNow()
    {
        using var connection = Pg.OpenAdmin();
        return connection.ExecuteScalar<DateTime>("select clock_timestamp()");
    }

    /// <summary>pgbouncer's backends that started a transaction or changed state since <paramref name="since"/>.</summary>
    public static async Task<int> ServerBackendsUsedSinceAsync(DateTime since)
    {
        await using var connection = Pg.OpenAdmin();
        await using var command = new NpgsqlCommand(
            "select count(*) from pg_stat_activity where backend_type = 'client backend' and usename = @u " +
            "and (state_change >= @since or xact_start >= @since)", connection);
        command.Parameters.AddWithValue("u", ServerUser);
        command.Parameters.AddWithValue("since", since);
        return (int)(long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Terminates the server connections pgbouncer holds for database <paramref name="database"/>, and waits until pgbouncer has dropped them.</summary>
    public static async Task<List<int>> TerminateServerConnectionsAsync(string database)
    {
        var pids = PgbouncerConsole.Show("SERVERS")
            .Where(r => r["database"] == database && int.TryParse(r["remote_pid"], out var pid) && pid > 0)
            .Select(r => int.Parse(r["remote_pid"], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        if (pids.Count == 0)
            return pids;
        await Pg.TerminateAsync(pids);
        await Poll.UntilAsync(() => !PgbouncerConsole.Show("SERVERS").Any(r => pids.Contains(int.TryParse(r["remote_pid"], out var p) ? p : -1)),
            $"pgbouncer to drop its terminated server connections {string.Join(",", pids)}");
        return pids;
    }
}

/// <summary>
/// pgbouncer's admin console (the virtual database <c>pgbouncer</c>; <c>covet</c> is an admin user). It speaks only the
/// simple query protocol, which Npgsql never uses, so it is read with psql (<c>$COVET_TEST_PG_BIN/psql</c>).
/// </summary>
internal static class PgbouncerConsole
{
    /// <summary>Rows of <c>SHOW <paramref name="what"/></c>, as column name → text.</summary>
    public static List<Dictionary<string, string>> Show(string what)
    {
        var target = new NpgsqlConnectionStringBuilder(Pgb.ConnectionString);
        var bin = Environment.GetEnvironmentVariable("COVET_TEST_PG_BIN") is { Length: > 0 } b ? b : "/usr/lib/postgresql/15/bin";
        var info = new ProcessStartInfo(Path.Combine(bin, "psql"),
            ["-X", "-q", "-w", "-A", "-F", "|", "-P", "footer=off", "-h", target.Host!, "-p", target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "-U", target.Username!, "-d", "pgbouncer", "-c", "SHOW " + what])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["PGPASSWORD"] = target.Password;
        info.Environment["PGCONNECT_TIMEOUT"] = "5";
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start psql");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(15)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"psql SHOW {what} on pgbouncer's console did not finish within 15 s");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"psql SHOW {what} on pgbouncer's console exited with {process.ExitCode}: {stderr.Result}");
        var lines = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = lines[0].Split('|');
        return lines.Skip(1).Select(line =>
        {
            var cells = line.Split('|');
            return header.Select((h, i) => (h, v: i < cells.Length ? cells[i] : "")).ToDictionary(x => x.h, x => x.v);
        }).ToList();
    }

    /// <summary>SHOW POOLS for one database (one pool: every server connection logs in as the same role).</summary>
    public static PgbouncerPool Pool(string database)
    {
        var row = Show("POOLS").Single(r => r["database"] == database);
        int N(string column) => int.Parse(row[column], System.Globalization.CultureInfo.InvariantCulture);
        return new PgbouncerPool(N("cl_active"), N("cl_waiting"),
            N("sv_active"), N("sv_idle"), N("sv_used"), N("sv_tested"), N("sv_login"),
            N("maxwait") + N("maxwait_us") / 1e6);
    }

    /// <summary>SHOW STATS totals for one database: (transactions, queries) pgbouncer has forwarded since it started.</summary>
    public static (long Transactions, long Queries) Totals(string database)
    {
        var row = Show("STATS").Single(r => r["database"] == database);
        return (long.Parse(row["total_xact_count"], System.Globalization.CultureInfo.InvariantCulture),
                long.Parse(row["total_query_count"], System.Globalization.CultureInfo.InvariantCulture));
    }
}

internal sealed record PgbouncerPool(int ClientsActive, int ClientsWaiting, int ServersActive, int ServersIdle, int ServersUsed, int ServersTested, int ServersLogin, double MaxWaitSeconds)
{
    public int Servers => ServersActive + ServersIdle + ServersUsed + ServersTested + ServersLogin;
}

/// <summary>
/// A Covet data source over Npgsql through pgbouncer, named by a unique Application Name (which pgbouncer passes on to the
/// server connection serving it).
/// </summary>
internal sealed class PgbTestPool : IDisposable
{
    public PgbTestPool(string label, CovetPoolOptions options, string? baseConnectionString = null)
    {
        ApplicationName = Pg.NewApplicationName(label);
        ConnectionString = new NpgsqlConnectionStringBuilder(baseConnectionString ?? Pgb.ConnectionString) { ApplicationName = ApplicationName }.ConnectionString;
        Options = options;
        Options.PoolName ??= ApplicationName;
        DataSource = CovetDataSource.Create(NpgsqlFactory.Instance, ConnectionString, Options);
    }

    /// <summary>Covet's defaults for tests, reset on or off, through pgbouncer.</summary>
    public static CovetPoolOptions DefaultOptions(bool reset, int maxPoolSize = 10)
    {
        var options = TestOptions.Default(maxPoolSize);
        options.ResetSessionOnReturn = reset;
        return options;
    }

    public string ApplicationName { get; }
    public string ConnectionString { get; }
    public CovetPoolOptions Options { get; }
    public CovetDataSource DataSource { get; }
    public CovetPoolStatistics Stats => DataSource.GetStatistics();

    public async Task<CovetDbConnection> OpenAsync()
    {
        var connection = DataSource.CreateConnection();
        await connection.OpenAsync();
        return connection;
    }

    public void Dispose() => DataSource.Dispose();
}

/// <summary>
/// The provider-neutral Dapper suite (<see cref="DapperDropInTests"/>) through pgbouncer. Two differences from a direct
/// PostgreSQL pool: the identity of a physical connection is Covet's client connection to pgbouncer (the provider object),
/// not <c>pg_backend_pid()</c>, which changes from one transaction to the next; and its "server connections" are
/// pgbouncer's backends that were used since the pool was created (the tests run one at a time, and nothing else uses
/// this pgbouncer; pgbouncer reuses idle server connections last-in first-out, so N concurrent clients touch at most N of
/// them). Counting by application name would not do with Covet's reset on: DISCARD ALL reverts application_name to the
/// value pgbouncer opened the server connection with, and pgbouncer adopts it as the client's.
/// </summary>
internal sealed class PgbouncerPoolUnderTest(PgbTestPool pool) : PoolUnderTest
{
    private readonly DateTime _created = Pgb.ServerNow();

    public override CovetDataSource DataSource => pool.DataSource;
    public override Type ProviderExceptionType => typeof(PostgresException);
    public override Task<object> SessionIdAsync(CovetDbConnection connection) => Task.FromResult<object>(connection.UnderlyingConnection);
    public override Task<int>? ServerConnectionsAsync() => Pgb.ServerBackendsUsedSinceAsync(_created);
    public override void Dispose() => pool.Dispose();
}
