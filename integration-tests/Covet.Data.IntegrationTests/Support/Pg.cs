using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// PostgreSQL helpers. Every pool under test gets its own Application Name, so <c>pg_stat_activity</c> counts exactly
/// that pool's server connections; the admin connections used to count and kill are unpooled, so they never outlive a
/// server restart.
/// </summary>
internal static class Pg
{
    public static string BaseConnectionString => Env.Require(Env.PgVariable);

    public static string AdminConnectionString(string? baseConnectionString = null) =>
        new NpgsqlConnectionStringBuilder(baseConnectionString ?? BaseConnectionString)
        {
            Pooling = false,
            ApplicationName = "covet-it-admin",
            Timeout = 5,
        }.ConnectionString;

    /// <summary>A unique application name (≤ 63 bytes, PostgreSQL's limit).</summary>
    public static string NewApplicationName(string label) =>
        $"cv-{(label.Length > 20 ? label[..20] : label)}-{Guid.NewGuid():N}";

    public static string ConnectionString(string applicationName) =>
        new NpgsqlConnectionStringBuilder(BaseConnectionString) { ApplicationName = applicationName }.ConnectionString;

    public static NpgsqlConnection OpenAdmin()
    {
        var connection = new NpgsqlConnection(AdminConnectionString());
        connection.Open();
        return connection;
    }

    public static async Task<List<int>> PidsAsync(string applicationName)
    {
        await using var connection = OpenAdmin();
        await using var command = new NpgsqlCommand("select pid from pg_stat_activity where application_name = @a order by pid", connection);
        command.Parameters.AddWithValue("a", applicationName);
        var pids = new List<int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            pids.Add(reader.GetInt32(0));
        return pids;
    }

    public static async Task<int> CountAsync(string applicationName) => (await PidsAsync(applicationName)).Count;

    public static async Task<bool> IsAliveAsync(int pid)
    {
        await using var connection = OpenAdmin();
        await using var command = new NpgsqlCommand("select count(*) from pg_stat_activity where pid = @p", connection);
        command.Parameters.AddWithValue("p", pid);
        return (long)(await command.ExecuteScalarAsync())! > 0;
    }

    /// <summary>Terminates the backends and waits until the server no longer lists them.</summary>
    public static async Task TerminateAsync(IReadOnlyCollection<int> pids)
    {
        await using (var connection = OpenAdmin())
        await using (var command = new NpgsqlCommand("select pg_terminate_backend(pid) from unnest(@pids) as pid", connection))
        {
            command.Parameters.AddWithValue("pids", pids.ToArray());
            await command.ExecuteNonQueryAsync();
        }
        await Poll.UntilAsync(async () =>
        {
            await using var connection = OpenAdmin();
            await using var command = new NpgsqlCommand("select count(*) from pg_stat_activity where pid = any(@pids)", connection);
            command.Parameters.AddWithValue("pids", pids.ToArray());
            return (long)(await command.ExecuteScalarAsync())! == 0;
        }, $"terminated backends {string.Join(",", pids)} to exit");
    }

    public static Task WaitForCountAsync(string applicationName, int expected, string what) =>
        Poll.ValueAsync(() => CountAsync(applicationName), n => n == expected, $"{what}: {expected} server connections named {applicationName}");

    /// <summary>Restarts the server in place ($COVET_TEST_PG_RESTART) and waits until it accepts connections again.</summary>
    public static async Task RestartAsync()
    {
        Env.RunShell(Env.PgRestartVariable, TimeSpan.FromSeconds(120));
        await WaitUntilAcceptingAsync();
    }

    public static Task WaitUntilAcceptingAsync() =>
        Poll.UntilAsync(async () =>
        {
            try
            {
                await using var connection = OpenAdmin();
                await using var command = new NpgsqlCommand("select 1", connection);
                await command.ExecuteScalarAsync();
                return true;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
            {
                return false;
            }
        }, "PostgreSQL to accept connections", TimeSpan.FromSeconds(60));
}

/// <summary>A Covet data source over Npgsql whose server connections are identified by a unique Application Name.</summary>
internal sealed class PgTestPool : IDisposable
{
    public PgTestPool(string label, CovetPoolOptions? options = null, string? extraConnectionString = null)
    {
        ApplicationName = Pg.NewApplicationName(label);
        ConnectionString = Pg.ConnectionString(ApplicationName) + (extraConnectionString is null ? "" : ";" + extraConnectionString);
        Options = options ?? TestOptions.Default();
        Options.PoolName ??= ApplicationName;
        DataSource = CovetDataSource.Create(NpgsqlFactory.Instance, ConnectionString, Options);
    }

    public string ApplicationName { get; }
    public string ConnectionString { get; }
    public CovetPoolOptions Options { get; }
    public CovetDataSource DataSource { get; }

    public CovetPoolStatistics Stats => DataSource.GetStatistics();

    public CovetDbConnection Open()
    {
        var connection = DataSource.CreateConnection();
        connection.Open();
        return connection;
    }

    public async Task<CovetDbConnection> OpenAsync()
    {
        var connection = DataSource.CreateConnection();
        await connection.OpenAsync();
        return connection;
    }

    public Task<int> ServerConnectionsAsync() => Pg.CountAsync(ApplicationName);

    public Task<List<int>> ServerPidsAsync() => Pg.PidsAsync(ApplicationName);

    public void Dispose() => DataSource.Dispose();
}
