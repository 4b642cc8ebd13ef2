using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Transactions;
using Dapper;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;
using NpgsqlTypes;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Dapper against a Covet connection behaves exactly as against the provider's own connection. The provider-neutral part
/// runs on PostgreSQL, MariaDB and SQLite (one subclass each); provider-specific features are in the subclasses.
/// </summary>
public abstract class DapperDropInTests
{
    public TestContext TestContext { get; set; } = null!;

    private protected abstract PoolUnderTest CreatePool(CovetPoolOptions? options = null);

    private protected static string Label(TestContext context) => context.TestName ?? "test";

    // ------------------------------------------------------------------------------------------------ basic API

    [TestMethod]
    public void QueryExecuteAndScalars_RoundTripOnAClosedConnectionThatDapperOpensAndCloses()
    {
        using var pool = CreatePool();
        var table = Sql.UniqueTable();
        using var connection = pool.DataSource.CreateConnection();
        connection.CreateRowsTable(table);
        try
        {
            Assert.AreEqual(ConnectionState.Closed, connection.State, "Dapper was given a closed connection");
            Assert.AreEqual(3, connection.Execute($"insert into {table} (id, name) values (@Id, @Name)",
                new[] { new Row { Id = 1, Name = "one" }, new Row { Id = 2, Name = "two" }, new Row { Id = 3, Name = "three" } }));
            Assert.AreEqual(ConnectionState.Closed, connection.State);

            var rows = connection.Query<Row>($"select id, name from {table} order by id").ToList();
            CollectionAssert.AreEqual(new[] { "one", "two", "three" }, rows.Select(r => r.Name).ToArray());
            Assert.AreEqual("two", connection.QueryFirst<Row>($"select id, name from {table} where id >= @min order by id", new { min = 2 }).Name);
            Assert.AreEqual(3, connection.QuerySingle<Row>($"select id, name from {table} where name = @name", new { name = "three" }).Id);
            Assert.IsNull(connection.QueryFirstOrDefault<Row>($"select id, name from {table} where id = 42"));
            Assert.AreEqual(3L, connection.ExecuteScalar<long>($"select count(*) from {table}"));
            Assert.AreEqual("one", connection.ExecuteScalar<string>($"select name from {table} where id = @id", new { id = 1 }));
            Assert.ThrowsExactly<InvalidOperationException>(() => connection.QuerySingle<Row>($"select id, name from {table}"),
                "QuerySingle over three rows fails as Dapper does on any provider");
            Assert.AreEqual(ConnectionState.Closed, connection.State);
        }
        finally
        {
            connection.DropTable(table);
        }
    }

    [TestMethod]
    public async Task QueryExecuteAndScalarsAsync_RoundTripOnAClosedConnectionThatDapperOpensAndCloses()
    {
        using var pool = CreatePool();
        var table = Sql.UniqueTable();
        await using var connection = pool.DataSource.CreateConnection();
        connection.CreateRowsTable(table);
        try
        {
            Assert.AreEqual(2, await connection.ExecuteAsync($"insert into {table} (id, name) values (@Id, @Name)",
                new[] { new Row { Id = 1, Name = "one" }, new Row { Id = 2, Name = "two" } }));
            var rows = (await connection.QueryAsync<Row>($"select id, name from {table} order by id")).ToList();
            Assert.HasCount(2, rows);
            Assert.AreEqual("two", (await connection.QueryFirstAsync<Row>($"select id, name from {table} where id = @id", new { id = 2 })).Name);
            Assert.AreEqual(1, (await connection.QuerySingleAsync<Row>($"select id, name from {table} where name = @n", new { n = "one" })).Id);
            Assert.AreEqual(2L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"));
            Assert.AreEqual(ConnectionState.Closed, connection.State);

            // The same on a connection the caller opened: Dapper leaves it open.
            await connection.OpenAsync();
            Assert.AreEqual(1, await connection.ExecuteAsync($"delete from {table} where id = 1"));
            Assert.AreEqual(ConnectionState.Open, connection.State);
            Assert.AreEqual(1L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"));
        }
        finally
        {
            await connection.CloseAsync();
            connection.DropTable(table);
        }
        await Poll.UntilNothingInUseAsync(pool.DataSource);
    }

    [TestMethod]
    public async Task QueryMultiple_ReadsEveryResultSet_SyncAndAsync()
    {
        using var pool = CreatePool();
        var table = Sql.UniqueTable();
        using var connection = pool.DataSource.CreateConnection();
        connection.CreateRowsTable(table);
        try
        {
            connection.Execute($"insert into {table} (id, name) values (1, 'a'), (2, 'b')");
            var sql = $"select id, name from {table} order by id; select count(*) from {table}; select name from {table} where id = 2";
            using (var grid = connection.QueryMultiple(sql))
            {
                Assert.HasCount(2, grid.Read<Row>().ToList());
                Assert.AreEqual(2L, grid.ReadSingle<long>());
                Assert.AreEqual("b", grid.ReadFirst<string>());
            }
            await using (var grid = await connection.QueryMultipleAsync(sql))
            {
                Assert.HasCount(2, (await grid.ReadAsync<Row>()).ToList());
                Assert.AreEqual(2L, await grid.ReadSingleAsync<long>());
                Assert.AreEqual("b", await grid.ReadFirstAsync<string>());
            }
            Assert.AreEqual(ConnectionState.Closed, connection.State);
        }
        finally
        {
            connection.DropTable(table);
        }
        await Poll.UntilNothingInUseAsync(pool.DataSource);
    }

    [TestMethod]
    public async Task UnbufferedQuery_HoldsTheConnectionWhileEnumerating_AndGivesItBackAfterwards()
    {
        using var pool = CreatePool();
        var table = Sql.UniqueTable();
        using var connection = pool.DataSource.CreateConnection();
        connection.CreateRowsTable(table);
        try
        {
            connection.Execute($"insert into {table} (id, name) values (1, 'a'), (2, 'b'), (3, 'c')");
            await Poll.UntilNothingInUseAsync(pool.DataSource);

            // Sync, enumerated to the end.
            var seen = 0;
            foreach (var row in connection.Query<Row>($"select id, name from {table} order by id", buffered: false))
            {
                seen++;
                Assert.AreEqual(1, pool.Stats.InUse, "the unbuffered reader holds one connection while rows are read");
                Assert.AreEqual(ConnectionState.Open, connection.State);
            }
            Assert.AreEqual(3, seen);
            Assert.AreEqual(ConnectionState.Closed, connection.State, "Dapper closed the connection it opened (CommandBehavior.CloseConnection)");
            await Poll.UntilNothingInUseAsync(pool.DataSource);

            // Sync, abandoned after the first row: disposing the enumerator gives the connection back too.
            foreach (var row in connection.Query<Row>($"select id, name from {table} order by id", buffered: false))
            {
                Assert.AreEqual(1, row.Id);
                break;
            }
            Assert.AreEqual(ConnectionState.Closed, connection.State);
            await Poll.UntilNothingInUseAsync(pool.DataSource);

            // Async unbuffered.
            seen = 0;
            await foreach (var row in connection.QueryUnbufferedAsync<Row>($"select id, name from {table} order by id"))
            {
                seen++;
                Assert.AreEqual(1, pool.Stats.InUse);
            }
            Assert.AreEqual(3, seen);
            Assert.AreEqual(ConnectionState.Closed, connection.State);
            await Poll.UntilNothingInUseAsync(pool.DataSource);
        }
        finally
        {
            connection.DropTable(table);
        }
    }

    // ------------------------------------------------------------------------------------------------ transactions

    [TestMethod]
    public async Task BeginTransaction_CommitPersistsAndRollbackDiscards()
    {
        using var pool = CreatePool();
        var table = Sql.UniqueTable();
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        try
        {
            using (var connection = pool.DataSource.CreateConnection())
            {
                connection.Open();
                using (var tx = connection.BeginTransaction())
                {
                    connection.Execute($"insert into {table} (id, name) values (1, 'committed')", transaction: tx);
                    tx.Commit();
                }
                using (var tx = connection.BeginTransaction())
                {
                    connection.Execute($"insert into {table} (id, name) values (2, 'rolled back')", transaction: tx);
                    Assert.AreEqual(2L, connection.ExecuteScalar<long>($"select count(*) from {table}", transaction: tx), "visible inside its transaction");
                    tx.Rollback();
                }
            }
            await using (var connection = pool.DataSource.CreateConnection())
            {
                await connection.OpenAsync();
                await using (var tx = await connection.BeginTransactionAsync())
                {
                    await connection.ExecuteAsync($"insert into {table} (id, name) values (3, 'committed async')", transaction: tx);
                    await tx.CommitAsync();
                }
                await using (var tx = await connection.BeginTransactionAsync())
                {
                    await connection.ExecuteAsync($"insert into {table} (id, name) values (4, 'rolled back async')", transaction: tx);
                    await tx.RollbackAsync();
                }
                await using (var tx = await connection.BeginTransactionAsync())
                {
                    await connection.ExecuteAsync($"insert into {table} (id, name) values (5, 'disposed without commit')", transaction: tx);
                }
            }

            // Checked through another borrow of the pool.
            using var check = pool.DataSource.CreateConnection();
            var ids = check.Query<int>($"select id from {table} order by id").ToArray();
            CollectionAssert.AreEqual(new[] { 1, 3 }, ids);
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.DropTable(table);
        }
        await Poll.UntilNothingInUseAsync(pool.DataSource);
    }

    [TestMethod]
    public async Task TransactionScope_CompleteCommitsTheWorkOfTwoOpensDoneOnOnePhysicalConnection()
    {
        using var pool = CreatePool();
        var table = Sql.UniqueTable();
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        // The setup connection is reset in the background after Close; a borrower arriving meanwhile would open a
        // second physical connection. Wait, so the scope below starts from exactly one idle connection.
        await Poll.UntilNothingInUseAsync(pool.DataSource);
        try
        {
            if (!pool.SupportsTransactionScope)
            {
                await AssertTransactionScopeIgnoredAsTheProviderDoesAsync(pool, table);
                return;
            }
            object first, second;
            using (var scope = new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
            {
                await using (var connection = pool.DataSource.CreateConnection())
                {
                    await connection.OpenAsync();
                    first = await pool.SessionIdAsync(connection);
                    await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'first open')");
                }
                await using (var connection = pool.DataSource.CreateConnection())
                {
                    // Dapper opens and closes this one itself.
                    await connection.ExecuteAsync($"insert into {table} (id, name) values (2, 'second open')");
                    await connection.OpenAsync();
                    second = await pool.SessionIdAsync(connection);
                    Assert.AreEqual(2L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"), "both inserts are in the one transaction");
                }
                Assert.AreEqual(first, second, "the second open inside the scope reused the enlisted physical connection");
                Assert.AreEqual(Guid.Empty, Transaction.Current!.TransactionInformation.DistributedIdentifier, "the transaction was not promoted to a distributed one");
                Assert.AreEqual(1, pool.Stats.Total, "one physical connection for the whole scope");
                scope.Complete();
            }

            await Poll.UntilNothingInUseAsync(pool.DataSource);
            using var check = pool.DataSource.CreateConnection();
            CollectionAssert.AreEqual(new[] { 1, 2 }, check.Query<int>($"select id from {table} order by id").ToArray());
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.DropTable(table);
        }
        await Poll.UntilNothingInUseAsync(pool.DataSource);
    }

    [TestMethod]
    public async Task TransactionScope_DisposedWithoutCompleteRollsBackAndFreesTheConnection()
    {
        using var pool = CreatePool();
        var table = Sql.UniqueTable();
        using (var setup = pool.DataSource.CreateConnection())
            setup.CreateRowsTable(table);
        // The setup connection is reset in the background after Close; a borrower arriving meanwhile would open a
        // second physical connection. Wait, so the scope below starts from exactly one idle connection.
        await Poll.UntilNothingInUseAsync(pool.DataSource);
        try
        {
            if (!pool.SupportsTransactionScope)
            {
                await AssertTransactionScopeIgnoredAsTheProviderDoesAsync(pool, table);
                return;
            }
            using (new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
            {
                await using (var connection = pool.DataSource.CreateConnection())
                    await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'never committed')");
                await using (var connection = pool.DataSource.CreateConnection())
                    await connection.ExecuteAsync($"insert into {table} (id, name) values (2, 'never committed either')");
                Assert.AreEqual(1, pool.Stats.Total);
                Assert.AreEqual(1, pool.Stats.InUse, "the connection stays with the transaction until it completes");
            }

            var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
            Assert.AreEqual(1, stats.Idle, "the connection came back after the rollback");
            using var check = pool.DataSource.CreateConnection();
            Assert.AreEqual(0L, check.ExecuteScalar<long>($"select count(*) from {table}"));
        }
        finally
        {
            using var cleanup = pool.DataSource.CreateConnection();
            cleanup.DropTable(table);
        }
    }

    /// <summary>
    /// A provider whose Open does not enlist (Microsoft.Data.Sqlite ignores an ambient transaction, and its
    /// EnlistTransaction throws): Covet's open inside the scope succeeds as the provider's does, the work autocommits
    /// (the scope rolling back does not undo it, as without Covet: conformance <c>tx.scope-*</c>), and no slot leaks.
    /// </summary>
    private static async Task AssertTransactionScopeIgnoredAsTheProviderDoesAsync(PoolUnderTest pool, string table)
    {
        using (new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
        {
            await using var connection = pool.DataSource.CreateConnection();
            await connection.OpenAsync();
            await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'in a scope the provider ignores')");
            // not completed
        }
        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        Assert.IsLessThanOrEqualTo(1, stats.Total);
        using var after = pool.DataSource.CreateConnection();
        Assert.AreEqual(1L, after.ExecuteScalar<long>($"select count(*) from {table}"), "the insert autocommitted, as on the provider's own connection");
    }

    // ------------------------------------------------------------------------------------------------ errors

    [TestMethod]
    public async Task ProviderErrors_PropagateUnwrapped_AndTheConnectionStaysUsable()
    {
        using var pool = CreatePool();
        var missing = Sql.UniqueTable("missing");
        await using var connection = pool.DataSource.CreateConnection();

        var sync = Assert.Throws<DbException>(() => connection.Query<int>($"select id from {missing}").ToList());
        Assert.AreEqual(pool.ProviderExceptionType, sync.GetType(), sync.ToString());
        var async = await Assert.ThrowsAsync<DbException>(() => connection.QueryAsync<int>($"select id from {missing}"));
        Assert.AreEqual(pool.ProviderExceptionType, async.GetType(), async.ToString());
        Assert.AreEqual(ConnectionState.Closed, connection.State, "Dapper closed the connection it opened, despite the error");

        await connection.OpenAsync();
        var id = await pool.SessionIdAsync(connection);
        var scalar = Assert.Throws<DbException>(() => connection.ExecuteScalar<int>($"select count(*) from {missing}"));
        Assert.AreEqual(pool.ProviderExceptionType, scalar.GetType());
        Assert.AreEqual(7L, await connection.ExecuteScalarAsync<long>("select 7"), "a statement error does not break the connection");
        Assert.AreEqual(id, await pool.SessionIdAsync(connection));
        await connection.CloseAsync();

        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        Assert.AreEqual(0L, stats.ConnectionsDestroyed, "a statement error is not a reason to close the physical connection");
    }

    // ------------------------------------------------------------------------------------------------ concurrency

    [TestMethod]
    public async Task ConcurrentBorrowers_NeverShareAPhysicalConnection()
    {
        const int workers = 32, iterations = 200, max = 8;
        var options = TestOptions.Default(max);
        options.AcquireTimeout = TimeSpan.FromSeconds(60);
        using var pool = CreatePool(options);
        var held = new ConcurrentDictionary<object, int>();
        var sessions = new ConcurrentDictionary<object, byte>();
        var violations = new ConcurrentQueue<string>();
        var maxServerConnections = 0;
        using var stop = new CancellationTokenSource();

        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested && pool.HasServer)
            {
                var n = await pool.ServerConnectionsAsync()!;
                if (n > Volatile.Read(ref maxServerConnections))
                    Volatile.Write(ref maxServerConnections, n);
                await Task.Delay(25);
            }
        });

        async Task Borrow(int worker, int iteration, bool sync)
        {
            await using var connection = pool.DataSource.CreateConnection();
            if (sync)
                connection.Open();
            else
                await connection.OpenAsync();
            var id = await pool.SessionIdAsync(connection);
            sessions.TryAdd(id, 0);
            if (!held.TryAdd(id, worker))
                violations.Enqueue($"worker {worker} iteration {iteration} got physical connection {id}, which worker {(held.TryGetValue(id, out var other) ? other : -1)} holds");
            var echoed = sync
                ? connection.QuerySingle<int>("select @worker", new { worker })
                : await connection.QuerySingleAsync<int>("select @worker", new { worker });
            if (echoed != worker)
                violations.Enqueue($"worker {worker} read {echoed}");
            if (!Equals(await pool.SessionIdAsync(connection), id))
                violations.Enqueue($"worker {worker}: the physical connection changed under an open logical connection");
            held.TryRemove(new KeyValuePair<object, int>(id, worker)); // before Close: the next borrower may get it at once
        }

        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, workers).Select(w => w % 2 == 0
            ? Task.Run(async () =>
            {
                for (var i = 0; i < iterations; i++)
                    await Borrow(w, i, sync: false);
            })
            : Task.Factory.StartNew(() =>
            {
                for (var i = 0; i < iterations; i++)
                    Borrow(w, i, sync: true).GetAwaiter().GetResult();
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        await Task.WhenAll(tasks);
        stop.Cancel();
        await sampler;
        Console.WriteLine($"{workers} workers x {iterations} borrows on max {max}: {clock.ElapsedMilliseconds} ms, {sessions.Count} physical connections" +
                          (pool.HasServer ? $", the server saw at most {maxServerConnections} at once" : ""));

        Assert.IsEmpty(violations, string.Join("\n", violations.Take(10)));
        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        Assert.AreEqual(stats.Total, stats.Idle + stats.InUse);
        Assert.AreEqual(0, stats.InUse);
        Assert.IsLessThanOrEqualTo(max, stats.Total);
        Assert.AreEqual((long)workers * iterations, stats.Checkouts);
        Assert.AreEqual(0L, stats.ResetFailures, stats.ToString());
        Assert.IsLessThanOrEqualTo(max, sessions.Count, "no physical connection was replaced: at most max were ever made");
        if (pool.HasServer)
        {
            Assert.IsGreaterThan(0, maxServerConnections, "the sampler saw the pool's connections on the server");
            Assert.IsLessThanOrEqualTo(max, maxServerConnections, "the server never saw more than max connections of this pool");
            Assert.IsLessThanOrEqualTo(max, await pool.ServerConnectionsAsync()!);
        }
    }
}

[TestClass]
public sealed class PostgresDapperTests : DapperDropInTests
{
    private protected override PoolUnderTest CreatePool(CovetPoolOptions? options = null) => PoolUnderTest.Postgres(Label(TestContext), options);

    [TestMethod]
    public async Task ArrayParameter_IsSentAsAPostgresArray_BecauseDapperSeesAnNpgsqlConnection()
    {
        using var pool = new PgTestPool(nameof(ArrayParameter_IsSentAsAPostgresArray_BecauseDapperSeesAnNpgsqlConnection));
        var table = Sql.UniqueTable();
        await using var connection = pool.DataSource.CreateConnection();
        Assert.AreEqual("NpgsqlConnection", connection.GetType().Name);
        connection.CreateRowsTable(table);
        try
        {
            await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')");
            var ids = new[] { 2, 4, 99 };
            var names = (await connection.QueryAsync<string>($"select name from {table} where id = any(@ids) order by id", new { ids })).ToArray();
            CollectionAssert.AreEqual(new[] { "b", "d" }, names);
            // A list-expanding Dapper (non-Npgsql connection) would have rewritten @ids into (@ids1, @ids2, ...), which
            // is a syntax error inside any(): so this only works when the array goes as one int[] parameter.
            Assert.AreEqual(3, await connection.ExecuteScalarAsync<int>("select cardinality(@ids)", new { ids }));
        }
        finally
        {
            connection.DropTable(table);
        }
    }

    [TestMethod]
    public async Task JsonbParameter_OfACommandFromCreateCommand_IsTheProvidersOwnParameter()
    {
        using var pool = new PgTestPool(nameof(JsonbParameter_OfACommandFromCreateCommand_IsTheProvidersOwnParameter));
        var table = Sql.UniqueTable();
        await using var connection = await pool.OpenAsync();
        await connection.ExecuteAsync($"create table {table} (id int primary key, doc jsonb not null)");
        try
        {
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = $"insert into {table} (id, doc) values (@id, @doc)";
                command.Parameters.Add(new NpgsqlParameter("id", 1));
                command.Parameters.Add(new NpgsqlParameter("doc", NpgsqlDbType.Jsonb) { Value = """{"name": "covet", "tags": ["a", "b"]}""" });
                Assert.AreEqual(1, await command.ExecuteNonQueryAsync());
            }
            Assert.AreEqual("jsonb", await connection.ExecuteScalarAsync<string>($"select pg_typeof(doc)::text from {table}"));
            Assert.AreEqual("covet", await connection.ExecuteScalarAsync<string>($"select doc->>'name' from {table} where doc @> @probe::jsonb",
                new { probe = """{"tags": ["b"]}""" }));
        }
        finally
        {
            await connection.ExecuteAsync($"drop table {table}");
        }
    }

    [TestMethod]
    public async Task InOutParameter_OfAProcedure_ComesBackThroughDynamicParameters()
    {
        using var pool = new PgTestPool(nameof(InOutParameter_OfAProcedure_ComesBackThroughDynamicParameters));
        var procedure = Sql.UniqueTable("p");
        await using var connection = pool.DataSource.CreateConnection();
        await connection.ExecuteAsync($"create procedure {procedure}(a int, inout total int) language plpgsql as $$ begin total := total + a; end $$");
        try
        {
            var parameters = new DynamicParameters();
            parameters.Add("a", 2);
            parameters.Add("total", 40, DbType.Int32, ParameterDirection.InputOutput);
            await connection.ExecuteAsync(procedure, parameters, commandType: CommandType.StoredProcedure);
            Assert.AreEqual(42, parameters.Get<int>("total"));
        }
        finally
        {
            await connection.ExecuteAsync($"drop procedure {procedure}");
        }
    }

    [TestMethod]
    public async Task DbBatch_RunsEveryCommandInOneRoundTrip()
    {
        using var pool = new PgTestPool(nameof(DbBatch_RunsEveryCommandInOneRoundTrip));
        var table = Sql.UniqueTable();
        await using var connection = await pool.OpenAsync();
        connection.CreateRowsTable(table);
        try
        {
            Assert.IsTrue(connection.CanCreateBatch);
            await using (var batch = connection.CreateBatch())
            {
                for (var i = 1; i <= 3; i++)
                {
                    var command = batch.CreateBatchCommand();
                    command.CommandText = $"insert into {table} (id, name) values (@id, @name)";
                    command.Parameters.Add(new NpgsqlParameter("id", i));
                    command.Parameters.Add(new NpgsqlParameter("name", $"row {i}"));
                    batch.BatchCommands.Add(command);
                }
                Assert.AreEqual(3, await batch.ExecuteNonQueryAsync());
                Assert.AreEqual(1, batch.BatchCommands[2].RecordsAffected);
            }
            await using (var batch = connection.CreateBatch())
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"select count(*) from {table}"));
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"select name from {table} where id = 2"));
                await using var reader = await batch.ExecuteReaderAsync();
                Assert.IsTrue(await reader.ReadAsync());
                Assert.AreEqual(3L, reader.GetInt64(0));
                Assert.IsTrue(await reader.NextResultAsync());
                Assert.IsTrue(await reader.ReadAsync());
                Assert.AreEqual("row 2", reader.GetString(0));
            }
        }
        finally
        {
            connection.DropTable(table);
        }
    }

    [TestMethod]
    public async Task RegisteredProviderFactory_WorksEndToEndThroughDbProviderFactories()
    {
        var applicationName = Pg.NewApplicationName("registered");
        var covet = new CovetProviderFactory(NpgsqlFactory.Instance, TestOptions.Default(4));
        DbProviderFactories.RegisterFactory("Covet.Npgsql", covet);
        var connectionString = Pg.ConnectionString(applicationName) + ";Covet.MaxPoolSize=3";
        try
        {
            var factory = DbProviderFactories.GetFactory("Covet.Npgsql");
            Assert.AreSame(covet, factory);
            await using var connection = factory.CreateConnection()!;
            connection.ConnectionString = connectionString;
            Assert.IsInstanceOfType<CovetDbConnection>(connection);
            Assert.AreSame(covet, DbProviderFactories.GetFactory(connection), "GetFactory(connection) is the Covet factory, not Npgsql's");

            var ids = new[] { 1, 2, 3 };
            Assert.AreEqual(6, await connection.ExecuteScalarAsync<int>("select sum(x) from unnest(@ids) as x", new { ids }));
            await connection.OpenAsync();
            Assert.AreEqual(applicationName, await connection.ExecuteScalarAsync<string>("select current_setting('application_name')"));
            await connection.CloseAsync();

            var stats = covet.GetStatistics().Single();
            Assert.AreEqual(3, stats.MaxPoolSize, "Covet.MaxPoolSize in the connection string configured the pool");
            await Poll.UntilAsync(() => covet.GetStatistics().Single().InUse == 0, "the connection to be back in the pool");
            Assert.AreEqual(covet.GetStatistics().Single().Total, await Pg.CountAsync(applicationName), "the server sees exactly the pool's connections");
        }
        finally
        {
            covet.ClearAllPools();
            DbProviderFactories.UnregisterFactory("Covet.Npgsql");
        }
        await Pg.WaitForCountAsync(applicationName, 0, "after ClearAllPools");
    }
}

[TestClass]
public sealed class MariaDbDapperTests : DapperDropInTests
{
    private protected override PoolUnderTest CreatePool(CovetPoolOptions? options = null) => PoolUnderTest.MariaDb(options);

    [TestMethod]
    public async Task OutParameter_OfAStoredProcedure_ComesBackThroughDynamicParameters()
    {
        using var pool = new MySqlTestPool();
        var procedure = Sql.UniqueTable("p");
        await using var connection = pool.DataSource.CreateConnection();
        await connection.ExecuteAsync($"create procedure {procedure}(in a int, out doubled int) begin set doubled = a * 2; end");
        try
        {
            var parameters = new DynamicParameters();
            parameters.Add("a", 21);
            parameters.Add("doubled", dbType: DbType.Int32, direction: ParameterDirection.Output);
            await connection.ExecuteAsync(procedure, parameters, commandType: CommandType.StoredProcedure);
            Assert.AreEqual(42, parameters.Get<int>("doubled"));
        }
        finally
        {
            await connection.ExecuteAsync($"drop procedure {procedure}");
        }
    }

    [TestMethod]
    public async Task DbBatch_RunsEveryCommand()
    {
        using var pool = new MySqlTestPool();
        var table = Sql.UniqueTable();
        await using var connection = await pool.OpenAsync();
        connection.CreateRowsTable(table);
        try
        {
            Assert.IsTrue(connection.CanCreateBatch);
            await using (var batch = connection.CreateBatch())
            {
                for (var i = 1; i <= 3; i++)
                {
                    var command = batch.CreateBatchCommand();
                    command.CommandText = $"insert into {table} (id, name) values (@id, @name)";
                    command.Parameters.Add(new MySqlParameter("@id", i));
                    command.Parameters.Add(new MySqlParameter("@name", $"row {i}"));
                    batch.BatchCommands.Add(command);
                }
                Assert.AreEqual(3, await batch.ExecuteNonQueryAsync());
            }
            await using (var batch = connection.CreateBatch())
            {
                batch.BatchCommands.Add(new MySqlBatchCommand($"select count(*) from {table}"));
                batch.BatchCommands.Add(new MySqlBatchCommand($"select name from {table} where id = 2"));
                await using var reader = await batch.ExecuteReaderAsync();
                Assert.IsTrue(await reader.ReadAsync());
                Assert.AreEqual(3L, reader.GetInt64(0));
                Assert.IsTrue(await reader.NextResultAsync());
                Assert.IsTrue(await reader.ReadAsync());
                Assert.AreEqual("row 2", reader.GetString(0));
            }
        }
        finally
        {
            connection.DropTable(table);
        }
    }
}

[TestClass]
public sealed class SqliteDapperTests : DapperDropInTests
{
    private protected override PoolUnderTest CreatePool(CovetPoolOptions? options = null) => PoolUnderTest.Sqlite(Label(TestContext), options);
}
