using System.Data;
using Dapper;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// With MaxPoolSize=1 the second borrower gets the first one's physical connection (same backend pid / connection id /
/// provider object): everything the first left behind — variables, temp tables, LISTEN, locks, an open transaction —
/// must be gone. With ResetSessionOnReturn=false the same test sees the state, which proves the checks can fail.
/// </summary>
[TestClass]
public sealed class SessionStateTests
{
    public TestContext TestContext { get; set; } = null!;

    private static CovetPoolOptions SingleConnection(bool reset)
    {
        var options = TestOptions.Default(maxPoolSize: 1);
        options.ResetSessionOnReturn = reset;
        return options;
    }

    // ------------------------------------------------------------------------------------------------ PostgreSQL

    /// <summary>Borrower 1 dirties every kind of session state it can, then closes with a transaction still open.</summary>
    private static async Task<int> DirtyPostgresSessionAsync(PgTestPool pool, string table, string channel)
    {
        await using var connection = await pool.OpenAsync();
        var pid = await connection.ExecuteScalarAsync<int>("select pg_backend_pid()");
        await connection.ExecuteAsync("set my.var = 'leaked'");
        await connection.ExecuteAsync("set application_name = 'leaked-app-name'");
        await connection.ExecuteAsync("set statement_timeout = '4321s'");
        await connection.ExecuteAsync("create temp table leaked_temp (id int)");
        await connection.ExecuteAsync($"listen {channel}");
        await connection.ExecuteAsync("select pg_advisory_lock(424242)");
        await connection.ExecuteAsync("prepare leaked_statement as select 1");
        await connection.ExecuteAsync("set search_path = public");
        var tx = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'uncommitted')", transaction: tx);
        return pid;
        // closed here with the transaction open
    }

    [TestMethod]
    public async Task Postgres_NextBorrowerOfTheSameBackend_SeesNoneOfThePreviousBorrowersSessionState()
    {
        using var pool = new PgTestPool(nameof(Postgres_NextBorrowerOfTheSameBackend_SeesNoneOfThePreviousBorrowersSessionState), SingleConnection(reset: true));
        var table = Sql.UniqueTable();
        var channel = Sql.UniqueTable("chan");
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        try
        {
            var pid = await DirtyPostgresSessionAsync(pool, table, channel);

            await using var connection = await pool.OpenAsync();
            Assert.AreEqual(pid, await connection.ExecuteScalarAsync<int>("select pg_backend_pid()"),
                "the same backend, so the state is gone because it was reset, not because the connection was replaced");
            Assert.IsTrue(string.IsNullOrEmpty(await connection.ExecuteScalarAsync<string>("select current_setting('my.var', true)")), "custom variable");
            Assert.AreEqual(pool.ApplicationName, await connection.ExecuteScalarAsync<string>("select current_setting('application_name')"));
            Assert.AreEqual("0", await connection.ExecuteScalarAsync<string>("select current_setting('statement_timeout')"));
            Assert.AreEqual("\"$user\", public", await connection.ExecuteScalarAsync<string>("select current_setting('search_path')"));
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>("select count(*) from pg_class where relname = 'leaked_temp' and relpersistence = 't'"), "temp table");
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>("select count(*) from pg_listening_channels()"), "LISTEN");
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>("select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"), "advisory lock");
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>("select count(*) from pg_prepared_statements where name = 'leaked_statement'"), "prepared statement");
            Assert.IsTrue(await connection.ExecuteScalarAsync<bool>("select txid_current_if_assigned() is null"), "not inside the previous borrower's transaction (it had written, so it had an xid)");
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"), "the open transaction was rolled back");
            await using var tx = await connection.BeginTransactionAsync(); // and a new one can start
            await tx.CommitAsync();
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.DropTable(table);
        }
        Assert.AreEqual(0L, pool.Stats.ResetFailures);
    }

    [TestMethod]
    public async Task Postgres_WithResetOff_TheNextBorrowerSeesTheSessionState_SoTheResetTestCanFail()
    {
        using var pool = new PgTestPool(nameof(Postgres_WithResetOff_TheNextBorrowerSeesTheSessionState_SoTheResetTestCanFail), SingleConnection(reset: false));
        var table = Sql.UniqueTable();
        var channel = Sql.UniqueTable("chan");
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        try
        {
            var pid = await DirtyPostgresSessionAsync(pool, table, channel);

            await using var connection = await pool.OpenAsync();
            Assert.AreEqual(pid, await connection.ExecuteScalarAsync<int>("select pg_backend_pid()"));
            Assert.AreEqual("leaked", await connection.ExecuteScalarAsync<string>("select current_setting('my.var', true)"));
            Assert.AreEqual("leaked-app-name", await connection.ExecuteScalarAsync<string>("select current_setting('application_name')"));
            Assert.AreEqual("public", await connection.ExecuteScalarAsync<string>("select current_setting('search_path')"));
            Assert.AreEqual(1L, await connection.ExecuteScalarAsync<long>("select count(*) from pg_class where relname = 'leaked_temp' and relpersistence = 't'"));
            Assert.AreEqual(1L, await connection.ExecuteScalarAsync<long>("select count(*) from pg_listening_channels()"));
            Assert.AreEqual(1L, await connection.ExecuteScalarAsync<long>("select count(*) from pg_prepared_statements where name = 'leaked_statement'"));
            // An open transaction is rolled back even with the reset off: that is never a session setting to keep.
            Assert.IsTrue(await connection.ExecuteScalarAsync<bool>("select txid_current_if_assigned() is null"));
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>($"select count(*) from public.{table}"));
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.Execute($"drop table if exists public.{table}");
        }
    }

    [TestMethod]
    public async Task Postgres_StateChangedThroughTheUnderlyingConnection_IsResetToo()
    {
        using var pool = new PgTestPool(nameof(Postgres_StateChangedThroughTheUnderlyingConnection_IsResetToo), SingleConnection(reset: true));
        int pid;
        await using (var connection = await pool.OpenAsync())
        {
            var npgsql = (NpgsqlConnection)connection.UnderlyingConnection;
            pid = npgsql.ProcessID;
            await using var command = new NpgsqlCommand("set my.var = 'via-underlying'", npgsql);
            await command.ExecuteNonQueryAsync();
        }
        await using (var connection = await pool.OpenAsync())
        {
            Assert.AreEqual(pid, await connection.ExecuteScalarAsync<int>("select pg_backend_pid()"));
            Assert.IsTrue(string.IsNullOrEmpty(await connection.ExecuteScalarAsync<string>("select current_setting('my.var', true)")));
        }
    }

    [TestMethod]
    public async Task Postgres_ExplicitlyPreparedCommand_StillRunsForTheNextBorrowerAfterTheReset()
    {
        using var pool = new PgTestPool(nameof(Postgres_ExplicitlyPreparedCommand_StillRunsForTheNextBorrowerAfterTheReset), SingleConnection(reset: true));
        const string sql = "select @x::int + 1";
        for (var borrower = 1; borrower <= 3; borrower++)
        {
            await using var connection = await pool.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.Add(new NpgsqlParameter("x", borrower));
            await command.PrepareAsync();
            Assert.AreEqual(borrower + 1, await command.ExecuteScalarAsync(), $"borrower {borrower}");
        }
        Assert.AreEqual(1L, pool.Stats.ConnectionsCreated, "all three borrowed the one physical connection");
    }

    [TestMethod]
    public async Task Postgres_AutoPreparedStatements_StillRunForTheNextBorrowerAfterTheReset()
    {
        using var pool = new PgTestPool(nameof(Postgres_AutoPreparedStatements_StillRunForTheNextBorrowerAfterTheReset), SingleConnection(reset: true),
            extraConnectionString: "Max Auto Prepare=10;Auto Prepare Min Usages=2");
        for (var borrower = 1; borrower <= 3; borrower++)
        {
            await using var connection = await pool.OpenAsync();
            for (var i = 0; i < 3; i++)
                Assert.AreEqual(borrower + i, await connection.ExecuteScalarAsync<int>("select @x::int + @i", new { x = borrower, i }), $"borrower {borrower}, run {i}");
        }
        Assert.AreEqual(1L, pool.Stats.ConnectionsCreated, "all three borrowed the one physical connection");
    }

    [TestMethod]
    public async Task Postgres_TransactionBegunWithPlainSql_AndLeftOpen_DoesNotReachTheNextBorrower()
    {
        using var pool = new PgTestPool(nameof(Postgres_TransactionBegunWithPlainSql_AndLeftOpen_DoesNotReachTheNextBorrower), SingleConnection(reset: true));
        var table = Sql.UniqueTable();
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        try
        {
            int pid;
            await using (var connection = await pool.OpenAsync())
            {
                pid = await connection.ExecuteScalarAsync<int>("select pg_backend_pid()");
                await connection.ExecuteAsync("begin transaction");
                await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'uncommitted')");
            }
            await using (var connection = await pool.OpenAsync())
            {
                var samePid = await connection.ExecuteScalarAsync<int>("select pg_backend_pid()") == pid;
                Assert.IsTrue(await connection.ExecuteScalarAsync<bool>("select txid_current_if_assigned() is null"), "not inside the previous borrower's transaction");
                await connection.ExecuteAsync($"insert into {table} (id, name) values (2, 'committed by borrower 2')");
                Console.WriteLine($"same backend: {samePid}");
            }
            await using var admin = Pg.OpenAdmin();
            CollectionAssert.AreEqual(new[] { 2 }, (await admin.QueryAsync<int>($"select id from {table}")).ToArray(),
                "borrower 1's insert was rolled back; borrower 2's autocommit insert is durable");
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.DropTable(table);
        }
    }

    // ------------------------------------------------------------------------------------------------ MariaDB

    private static async Task<long> DirtyMariaDbSessionAsync(MySqlTestPool pool, string table, string lockName)
    {
        await using var connection = await pool.OpenAsync();
        var id = await connection.ExecuteScalarAsync<long>("select connection_id()");
        await connection.ExecuteAsync("set @x = 1");
        await connection.ExecuteAsync("set session sql_mode = 'ANSI_QUOTES'");
        await connection.ExecuteAsync("set session wait_timeout = 4321");
        await connection.ExecuteAsync("create temporary table leaked_temp (id int)");
        Assert.AreEqual(1L, await connection.ExecuteScalarAsync<long>($"select get_lock('{lockName}', 0)"));
        var tx = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'uncommitted')", transaction: tx);
        return id;
    }

    [TestMethod]
    public async Task MariaDb_NextBorrowerOfTheSameConnection_SeesNoneOfThePreviousBorrowersSessionState()
    {
        using var pool = new MySqlTestPool(SingleConnection(reset: true), extraConnectionString: "Allow User Variables=true");
        var table = Sql.UniqueTable();
        var lockName = Sql.UniqueTable("lock");
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        try
        {
            var id = await DirtyMariaDbSessionAsync(pool, table, lockName);

            await using var connection = await pool.OpenAsync();
            Assert.AreEqual(id, await connection.ExecuteScalarAsync<long>("select connection_id()"),
                "the same connection, so the state is gone because it was reset, not because the connection was replaced");
            Assert.IsNull(await connection.ExecuteScalarAsync<object>("select @x"), "user variable");
            Assert.AreEqual(await connection.ExecuteScalarAsync<string>("select @@global.sql_mode"), await connection.ExecuteScalarAsync<string>("select @@session.sql_mode"));
            Assert.AreEqual(await connection.ExecuteScalarAsync<long>("select @@global.wait_timeout"), await connection.ExecuteScalarAsync<long>("select @@session.wait_timeout"));
            var missing = await Assert.ThrowsExactlyAsync<MySqlException>(() => connection.ExecuteScalarAsync<long>("select count(*) from leaked_temp"));
            Assert.AreEqual(MySqlErrorCode.NoSuchTable, missing.ErrorCode, "temporary table");
            Assert.IsNull(await connection.ExecuteScalarAsync<object>($"select is_used_lock('{lockName}')"), "GET_LOCK lock");
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>("select @@in_transaction"), "not inside the previous borrower's transaction");
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"), "the open transaction was rolled back");
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.DropTable(table);
        }
        Assert.AreEqual(0L, pool.Stats.ResetFailures);
    }

    [TestMethod]
    public async Task MariaDb_WithResetOff_TheNextBorrowerSeesTheSessionState_SoTheResetTestCanFail()
    {
        using var pool = new MySqlTestPool(SingleConnection(reset: false), extraConnectionString: "Allow User Variables=true");
        var table = Sql.UniqueTable();
        var lockName = Sql.UniqueTable("lock");
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        try
        {
            var id = await DirtyMariaDbSessionAsync(pool, table, lockName);

            await using var connection = await pool.OpenAsync();
            Assert.AreEqual(id, await connection.ExecuteScalarAsync<long>("select connection_id()"));
            Assert.AreEqual(1L, await connection.ExecuteScalarAsync<long>("select @x"));
            Assert.AreEqual("ANSI_QUOTES", await connection.ExecuteScalarAsync<string>("select @@session.sql_mode"));
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>("select count(*) from leaked_temp"));
            Assert.AreEqual(id, await connection.ExecuteScalarAsync<long>($"select is_used_lock('{lockName}')"));
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>("select @@in_transaction"), "an open transaction is rolled back even with the reset off");
            Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"));
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.DropTable(table);
        }
    }

    [TestMethod]
    public async Task MariaDb_ExplicitlyPreparedCommand_StillRunsForTheNextBorrowerAfterTheReset()
    {
        using var pool = new MySqlTestPool(SingleConnection(reset: true));
        const string sql = "select @x + 1";
        for (var borrower = 1; borrower <= 3; borrower++)
        {
            await using var connection = await pool.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.Add(new MySqlParameter("@x", borrower));
            await command.PrepareAsync();
            Assert.AreEqual((long)borrower + 1, Convert.ToInt64(await command.ExecuteScalarAsync()), $"borrower {borrower}");
        }
        Assert.AreEqual(1L, pool.Stats.ConnectionsCreated, "all three borrowed the one physical connection");
    }

    [TestMethod]
    public async Task MariaDb_TransactionBegunWithPlainSql_AndLeftOpen_DoesNotReachTheNextBorrower()
    {
        using var pool = new MySqlTestPool(SingleConnection(reset: true));
        var table = Sql.UniqueTable();
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        try
        {
            await using (var connection = await pool.OpenAsync())
            {
                await connection.ExecuteAsync("start transaction");
                await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'uncommitted')");
            }
            await using (var connection = await pool.OpenAsync())
            {
                Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>("select @@in_transaction"), "not inside the previous borrower's transaction");
                await connection.ExecuteAsync($"insert into {table} (id, name) values (2, 'committed by borrower 2')");
            }
            await using var admin = MySql.OpenAdmin();
            CollectionAssert.AreEqual(new[] { 2 }, (await admin.QueryAsync<int>($"select id from {table}")).ToArray(),
                "borrower 1's insert was rolled back; borrower 2's autocommit insert is durable");
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.DropTable(table);
        }
    }

    // ------------------------------------------------------------------------------------------------ SQLite

    private static object DirtySqliteSession(CovetDataSource dataSource, SqliteFile file, string table)
    {
        using var connection = dataSource.CreateConnection();
        connection.Open();
        var physical = connection.UnderlyingConnection;
        connection.Execute("create temp table leaked_temp (id int)");
        connection.Execute($"attach database '{file.Sibling("attached")}' as leaked_attached");
        connection.Execute("create table leaked_attached.things (id int)");
        var tx = connection.BeginTransaction();
        connection.Execute($"insert into {table} (id, name) values (1, 'uncommitted')", transaction: tx);
        return physical;
    }

    [TestMethod]
    public void Sqlite_NextBorrowerOfTheSameConnection_HasNoTempTablesOrAttachedDatabases()
    {
        using var file = new SqliteFile("reset");
        using var dataSource = CovetDataSource.Create(SqliteFactory.Instance, file.ConnectionString, SingleConnection(reset: true));
        var table = Sql.UniqueTable();
        using (var setup = dataSource.CreateConnection())
            setup.CreateRowsTable(table);

        var physical = DirtySqliteSession(dataSource, file, table);

        using var connection = dataSource.CreateConnection();
        connection.Open();
        Assert.AreSame(physical, connection.UnderlyingConnection, "the same SqliteConnection");
        Assert.AreEqual(0L, connection.ExecuteScalar<long>("select count(*) from temp.sqlite_master where name = 'leaked_temp'"), "temp table");
        CollectionAssert.AreEquivalent(new[] { "main" }, connection.Query<string>("select name from pragma_database_list where name <> 'temp'").ToArray(), "attached database");
        Assert.AreEqual(0L, connection.ExecuteScalar<long>($"select count(*) from {table}"), "the open transaction was rolled back");
        using var tx = connection.BeginTransaction(); // no transaction is still open
        tx.Commit();
    }

    [TestMethod]
    public void Sqlite_WithResetOff_TheNextBorrowerSeesTempTablesAndAttachedDatabases_SoTheResetTestCanFail()
    {
        using var file = new SqliteFile("noreset");
        using var dataSource = CovetDataSource.Create(SqliteFactory.Instance, file.ConnectionString, SingleConnection(reset: false));
        var table = Sql.UniqueTable();
        using (var setup = dataSource.CreateConnection())
            setup.CreateRowsTable(table);

        var physical = DirtySqliteSession(dataSource, file, table);

        using var connection = dataSource.CreateConnection();
        connection.Open();
        Assert.AreSame(physical, connection.UnderlyingConnection);
        Assert.AreEqual(1L, connection.ExecuteScalar<long>("select count(*) from temp.sqlite_master where name = 'leaked_temp'"));
        Assert.AreEqual(1L, connection.ExecuteScalar<long>("select count(*) from pragma_database_list where name = 'leaked_attached'"));
        Assert.AreEqual(0L, connection.ExecuteScalar<long>($"select count(*) from {table}"), "an open transaction is rolled back even with the reset off");
    }
}
