using System.Data.Common;
using Covet.Data.Providers;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// The dialects' socket liveness check (<see cref="ProviderDialect.ProbeSocket"/>) on the real drivers and servers: it
/// binds with the driver versions the project references, a live idle connection reads Quiet, a killed one Closed, one
/// with a notification waiting Readable, and the look consumes nothing (the connection works afterwards and the
/// notification is still delivered).
/// </summary>
[TestClass]
public sealed class SocketProbeTests
{
    private static ProviderDialect PgDialect => ProviderDialect.For(NpgsqlFactory.Instance);
    private static ProviderDialect MySqlDialect => ProviderDialect.For(MySqlConnectorFactory.Instance);

    private static string PgPhysical(string? applicationName = null) =>
        new NpgsqlConnectionStringBuilder(Pg.BaseConnectionString) { Pooling = false, ApplicationName = applicationName ?? Pg.NewApplicationName("probe") }.ConnectionString;

    private static string MySqlPhysical(string? baseConnectionString = null) =>
        new MySqlConnectionStringBuilder(baseConnectionString ?? MySql.BaseConnectionString) { Pooling = false }.ConnectionString;

    private static async Task<NpgsqlConnection> OpenPgAsync(string? connectionString = null)
    {
        var connection = new NpgsqlConnection(connectionString ?? PgPhysical());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select 1", connection);
        await command.ExecuteScalarAsync();
        return connection;
    }

    private static async Task<MySqlConnection> OpenMySqlAsync(string? connectionString = null)
    {
        var connection = new MySqlConnection(connectionString ?? MySqlPhysical());
        await connection.OpenAsync();
        await using var command = new MySqlCommand("select 1", connection);
        await command.ExecuteScalarAsync();
        return connection;
    }

    private static async Task TerminateAndWaitAsync(int pid)
    {
        await using var admin = Pg.OpenAdmin();
        await using var command = new NpgsqlCommand("select pg_terminate_backend(@p, 10000)", admin);
        command.Parameters.AddWithValue("p", pid);
        Assert.IsTrue((bool)(await command.ExecuteScalarAsync())!, $"backend {pid} exited");
    }

    // ------------------------------------------------------------------------------------------------ bindings

    [TestMethod]
    public void Bindings_WithTheReferencedDriverVersions_DoNotFallBack()
    {
        Console.WriteLine($"Npgsql {typeof(NpgsqlConnection).Assembly.GetName().Version}, MySqlConnector {typeof(MySqlConnection).Assembly.GetName().Version}");
        Assert.IsNotNull(Providers.Postgres.NpgsqlSocketAccess.For(typeof(NpgsqlConnection)), "Npgsql's connector socket is no longer where the binding looks");
        Assert.IsNotNull(Providers.MySql.MySqlConnectorSocketAccess.For(typeof(MySqlConnection)), "MySqlConnector's session socket is no longer where the binding looks");
        Assert.IsTrue(PgDialect.CanProbeSocket);
        Assert.IsTrue(MySqlDialect.CanProbeSocket);
        Assert.IsFalse(ProviderDialect.For(Microsoft.Data.Sqlite.SqliteFactory.Instance).CanProbeSocket, "SQLite has no socket");
    }

    [TestMethod]
    public void Probe_OnAClosedConnection_IsClosed_AndOnAnUnboundDriver_Unknown()
    {
        using var pg = new NpgsqlConnection(PgPhysical());
        Assert.AreEqual(SocketState.Closed, PgDialect.ProbeSocket(pg), "never opened");
        using var sqlite = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=:memory:");
        sqlite.Open();
        Assert.AreEqual(SocketState.Unknown, ProviderDialect.For(Microsoft.Data.Sqlite.SqliteFactory.Instance).ProbeSocket(sqlite));
    }

    // ------------------------------------------------------------------------------------------------ PostgreSQL

    [TestMethod]
    public async Task Postgres_LiveIdleConnection_IsQuiet_AndStillWorks()
    {
        await using var connection = await OpenPgAsync();
        Assert.AreEqual(SocketState.Quiet, PgDialect.ProbeSocket(connection));
        Assert.AreEqual(SocketState.Quiet, PgDialect.ProbeSocket(connection));
        await using var command = new NpgsqlCommand("select 42", connection);
        Assert.AreEqual(42, (int)(await command.ExecuteScalarAsync())!);
    }

    [TestMethod]
    public async Task Postgres_TerminatedIdleConnection_IsClosed()
    {
        await using var connection = await OpenPgAsync();
        await TerminateAndWaitAsync(connection.ProcessID);
        Assert.AreEqual(SocketState.Closed, PgDialect.ProbeSocket(connection));
        var failure = await Assert.ThrowsAsync<NpgsqlException>(async () =>
        {
            await using var command = new NpgsqlCommand("select 1", connection);
            await command.ExecuteScalarAsync();
        });
        Console.WriteLine($"then the next command fails: {failure.GetType().Name}: {failure.Message}");
    }

    [TestMethod]
    public async Task Postgres_TerminatedIdleConnectionOverAUnixDomainSocket_IsClosed()
    {
        var data = Env.Require("COVET_TEST_PG_DATA");
        var socketDirectory = Path.Combine(Path.GetDirectoryName(data.TrimEnd('/'))!, "sock");
        var builder = new NpgsqlConnectionStringBuilder(PgPhysical()) { Host = socketDirectory };
        await using var connection = await OpenPgAsync(builder.ConnectionString);
        Assert.AreEqual(SocketState.Quiet, PgDialect.ProbeSocket(connection));
        await TerminateAndWaitAsync(connection.ProcessID);
        Assert.AreEqual(SocketState.Closed, PgDialect.ProbeSocket(connection));
    }

    [TestMethod]
    public async Task Postgres_PendingNotification_IsReadable_ConsumesNothing_AndIsStillDelivered()
    {
        await using var listener = await OpenPgAsync();
        var channel = "covet_probe_" + Guid.NewGuid().ToString("N")[..12];
        var received = new List<string>();
        listener.Notification += (_, e) => received.Add(e.Payload);
        await using (var listen = new NpgsqlCommand($"LISTEN {channel}", listener))
            await listen.ExecuteNonQueryAsync();
        Assert.AreEqual(SocketState.Quiet, PgDialect.ProbeSocket(listener));

        await using (var notifier = await OpenPgAsync())
        await using (var notify = new NpgsqlCommand($"NOTIFY {channel}, 'hello'", notifier))
            await notify.ExecuteNonQueryAsync();
        // The notification travels asynchronously: wait until it is on the socket.
        await Poll.UntilAsync(() => PgDialect.ProbeSocket(listener) != SocketState.Quiet, "the notification to reach the listener's socket");

        Assert.AreEqual(SocketState.Readable, PgDialect.ProbeSocket(listener), "a notification is not a hang-up");
        Assert.AreEqual(SocketState.Readable, PgDialect.ProbeSocket(listener), "looking twice sees the same bytes: nothing was consumed");
        Assert.IsEmpty(received, "nothing delivered by looking");

        await using (var command = new NpgsqlCommand("select 7", listener))
            Assert.AreEqual(7, (int)(await command.ExecuteScalarAsync())!, "the connection still works");
        CollectionAssert.AreEqual(new[] { "hello" }, received, "Npgsql read and delivered the notification with the next command");
        Assert.AreEqual(SocketState.Quiet, PgDialect.ProbeSocket(listener));
    }

    // ------------------------------------------------------------------------------------------------ MariaDB

    [TestMethod]
    public async Task MariaDb_LiveIdleConnection_IsQuiet_AndStillWorks()
    {
        await using var connection = await OpenMySqlAsync();
        Assert.AreEqual(SocketState.Quiet, MySqlDialect.ProbeSocket(connection));
        await using var command = new MySqlCommand("select 42", connection);
        Assert.AreEqual(42L, Convert.ToInt64(await command.ExecuteScalarAsync()));
    }

    [TestMethod]
    public async Task MariaDb_KilledIdleConnection_IsClosed()
    {
        await using var connection = await OpenMySqlAsync();
        await MySql.KillAsync([connection.ServerThread]);
        // KILL returns once the session is flagged; the server thread closes the socket as it leaves (microseconds later).
        // Reaching Closed is what is asserted; the time it takes is measured in SocketProbeRaceTests.
        await Poll.UntilAsync(() => MySqlDialect.ProbeSocket(connection) == SocketState.Closed, "the killed session's socket to read Closed", TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<MySqlException>(async () =>
        {
            await using var command = new MySqlCommand("select 1", connection);
            await command.ExecuteScalarAsync();
        });
    }

    [TestMethod]
    public async Task MariaDb_KilledIdleConnectionOverAUnixDomainSocket_IsClosed()
    {
        var data = Env.Require("COVET_TEST_MYSQL_DATA");
        var socketPath = Path.Combine(Path.GetDirectoryName(data.TrimEnd('/'))!, "mysqld.sock");
        var builder = new MySqlConnectionStringBuilder(MySqlPhysical()) { Server = socketPath, ConnectionProtocol = MySqlConnectionProtocol.UnixSocket };
        await using var connection = await OpenMySqlAsync(builder.ConnectionString);
        Assert.AreEqual(SocketState.Quiet, MySqlDialect.ProbeSocket(connection));
        await MySql.KillAsync([connection.ServerThread]);
        await Poll.UntilAsync(() => MySqlDialect.ProbeSocket(connection) == SocketState.Closed, "the killed session's Unix socket to read Closed", TimeSpan.FromSeconds(5));
    }
}
