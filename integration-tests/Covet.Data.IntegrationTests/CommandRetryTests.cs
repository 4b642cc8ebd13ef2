using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// The one retry Covet's command path makes (issue 13): a PostgreSQL session terminated after the checkout but before
/// the server read the first command, proven by the FATAL error answering the session reset that travels ahead of the
/// command. Then the command runs on another connection, once, and the caller sees only its result. Where the command may
/// have run (killed mid-statement) or a transaction is open, nothing is retried: the provider's error reaches the caller.
/// </summary>
/// <remarks>Each kill waits until the backend has exited (<c>pg_terminate_backend(pid, timeout)</c>): deterministic.</remarks>
[TestClass]
public sealed class CommandRetryTests
{
    private static async Task TerminateAndWaitAsync(int pid)
    {
        await using var admin = Pg.OpenAdmin();
        await using var command = new NpgsqlCommand($"select pg_terminate_backend({pid}, 10000)", admin);
        Assert.IsTrue((bool)(await command.ExecuteScalarAsync())!, $"backend {pid} exited");
    }

    private static int Pid(CovetDbConnection connection) => ((NpgsqlConnection)connection.UnderlyingConnection).ProcessID;

    /// <summary>A connection checked out again after a dirty return, so DISCARD ALL is queued ahead of its next command.</summary>
    private static async Task<CovetDbConnection> OpenWithQueuedResetAsync(PgTestPool pool)
    {
        await using (var first = await pool.OpenAsync())
        await using (var command = first.CreateCommand())
        {
            command.CommandText = "select 1";
            await command.ExecuteScalarAsync();
        }
        return await pool.OpenAsync();
    }

    private static string NewTable() => "covet_retry_" + Guid.NewGuid().ToString("N")[..12];

    private static async Task CreateTableAsync(string table)
    {
        await using var admin = Pg.OpenAdmin();
        await using var command = new NpgsqlCommand($"create table {table} (n int)", admin);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> CountAsync(string table)
    {
        await using var admin = Pg.OpenAdmin();
        await using var command = new NpgsqlCommand($"select count(*) from {table}", admin);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task DropTableAsync(string table)
    {
        await using var admin = Pg.OpenAdmin();
        await using var command = new NpgsqlCommand($"drop table if exists {table}", admin);
        await command.ExecuteNonQueryAsync();
    }

    [TestMethod]
    [DataRow("async")]
    [DataRow("sync")]
    [DataRow("reader")]
    public async Task SessionTerminatedBetweenCheckoutAndFirstCommand_CommandRunsOnceOnAnotherConnection(string how)
    {
        using var pool = new PgTestPool(nameof(SessionTerminatedBetweenCheckoutAndFirstCommand_CommandRunsOnceOnAnotherConnection), TestOptions.Default(maxPoolSize: 2));
        var table = NewTable();
        await CreateTableAsync(table);
        try
        {
            await using var connection = await OpenWithQueuedResetAsync(pool);
            var before = Pid(connection);
            await TerminateAndWaitAsync(before);

            await using var command = connection.CreateCommand();
            command.CommandText = $"insert into {table} values (1); select pg_backend_pid()";
            var after = how switch
            {
                "async" => (int)(await command.ExecuteScalarAsync())!,
                "sync" => (int)command.ExecuteScalar()!,
                _ => await ReadPidAsync(command),
            };

            Assert.AreNotEqual(before, after, "the command ran on another backend");
            Assert.AreEqual(System.Data.ConnectionState.Open, connection.State);
            Assert.AreEqual(1L, await CountAsync(table), "the insert ran exactly once");
            Assert.AreEqual(after, Pid(connection), "the logical connection now holds the new physical connection");
            await connection.CloseAsync();
            var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
            Assert.IsFalse((await pool.ServerPidsAsync()).Contains(before), "the terminated connection was destroyed");
            Assert.AreEqual(stats.Total, await pool.ServerConnectionsAsync());
        }
        finally
        {
            await DropTableAsync(table);
        }

        static async Task<int> ReadPidAsync(System.Data.Common.DbCommand command)
        {
            await using var reader = await command.ExecuteReaderAsync();
            Assert.IsTrue(await reader.ReadAsync());
            return reader.GetInt32(0);
        }
    }

    [TestMethod]
    public async Task TheRawProvider_SameScenario_Throws_SoTheRetryIsADifference()
    {
        // Differential: Npgsql's own pool, same dirty return and termination: the caller gets 57P01.
        var applicationName = Pg.NewApplicationName("raw-retry");
        await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(Pg.ConnectionString(applicationName)) { MaxPoolSize = 2 }.ConnectionString);
        await using (var first = await dataSource.OpenConnectionAsync())
        await using (var command = new NpgsqlCommand("select 1", first))
            await command.ExecuteScalarAsync();
        await using var connection = await dataSource.OpenConnectionAsync();
        await TerminateAndWaitAsync(connection.ProcessID);
        var failure = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var command = new NpgsqlCommand("select 1", connection);
            await command.ExecuteScalarAsync();
        });
        Assert.AreEqual("57P01", failure.SqlState);
    }

    [TestMethod]
    public async Task SessionTerminatedMidStatement_IsNotRetried()
    {
        using var pool = new PgTestPool(nameof(SessionTerminatedMidStatement_IsNotRetried), TestOptions.Default(maxPoolSize: 2));
        await using var connection = await OpenWithQueuedResetAsync(pool);
        var pid = Pid(connection);
        var physical = connection.UnderlyingConnection;
        await using var command = connection.CreateCommand();
        command.CommandText = "select pg_sleep(5)";
        var running = command.ExecuteScalarAsync();
        await using (var admin = Pg.OpenAdmin())
        {
            await Poll.UntilAsync(async () =>
            {
                await using var check = new NpgsqlCommand($"select count(*) from pg_stat_activity where pid = {pid} and state = 'active' and query like '%pg_sleep%'", admin);
                return (long)(await check.ExecuteScalarAsync())! == 1;
            }, "the statement to be running");
        }
        await TerminateAndWaitAsync(pid);

        var failure = await Assert.ThrowsAsync<PostgresException>(() => running);
        Assert.AreEqual("57P01", failure.SqlState, "the provider's own error: the statement was read and may have run");
        Assert.AreSame(physical, connection.UnderlyingConnection, "no other connection was taken");
        Assert.AreNotEqual(System.Data.ConnectionState.Open, physical.State, "the caller holds the broken one, as with the provider");
    }

    [TestMethod]
    public async Task SessionTerminatedInsideATransaction_IsNotRetried()
    {
        using var pool = new PgTestPool(nameof(SessionTerminatedInsideATransaction_IsNotRetried), TestOptions.Default(maxPoolSize: 2));
        await using var connection = await OpenWithQueuedResetAsync(pool);
        var pid = Pid(connection);
        await using var transaction = await connection.BeginTransactionAsync();
        await TerminateAndWaitAsync(pid);

        await using var command = connection.CreateCommand();
        command.CommandText = "select 1";
        command.Transaction = transaction;
        var failure = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteScalarAsync());
        Assert.AreEqual("57P01", failure.SqlState, "a retry elsewhere would run outside the caller's transaction");
    }

    [TestMethod]
    public async Task SessionTerminatedAfterTheFirstCommand_IsNotRetried()
    {
        using var pool = new PgTestPool(nameof(SessionTerminatedAfterTheFirstCommand_IsNotRetried), TestOptions.Default(maxPoolSize: 2));
        await using var connection = await OpenWithQueuedResetAsync(pool);
        await using (var first = connection.CreateCommand())
        {
            first.CommandText = "set application_name = 'changed'";
            await first.ExecuteNonQueryAsync(); // consumes the queued reset: the session now has state of this borrower
        }
        var pid = Pid(connection);
        await TerminateAndWaitAsync(pid);

        await using var command = connection.CreateCommand();
        command.CommandText = "select 1";
        var failure = await Assert.ThrowsAsync<NpgsqlException>(() => command.ExecuteScalarAsync());
        Console.WriteLine($"second command after the kill: {failure.GetType().Name}: {failure.Message}");
    }
}
