using Dapper;
using Npgsql;
using NpgsqlTypes;

namespace Covet.Data.IntegrationTests.Pgbouncer;

/// <summary>
/// The whole provider-neutral Dapper suite (<see cref="DapperDropInTests"/>: Query/QueryFirst/QuerySingle/Execute/ExecuteScalar,
/// async, QueryMultiple, unbuffered sync and async, BeginTransaction commit/rollback/dispose, TransactionScope, provider
/// errors, 32 concurrent borrowers) plus PostgreSQL arrays and jsonb, through pgbouncer in transaction mode: once with
/// Covet's reset off (the recommended setting there) and once with the default reset on (a <c>DISCARD ALL</c> sent with
/// the next command after each dirty return: wasteful behind pgbouncer, and it must still work).
/// </summary>
public abstract class PgbouncerDapperTests : DapperDropInTests
{
    private protected abstract bool Reset { get; }

    private protected override PoolUnderTest CreatePool(CovetPoolOptions? options = null)
    {
        options ??= TestOptions.Default();
        options.ResetSessionOnReturn = Reset;
        return new PgbouncerPoolUnderTest(new PgbTestPool(Label(TestContext), options));
    }

    private PgbTestPool CreatePgbPool() => new(Label(TestContext), PgbTestPool.DefaultOptions(Reset));

    [TestMethod]
    public async Task ArrayParameter_AnyOfIds_IsOneInt4ArrayParameter()
    {
        using var pool = CreatePgbPool();
        var table = Sql.UniqueTable();
        await using var connection = pool.DataSource.CreateConnection();
        Assert.AreEqual("NpgsqlConnection", connection.GetType().Name);
        connection.CreateRowsTable(table);
        try
        {
            await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')");
            var ids = new[] { 2, 4, 99 };
            CollectionAssert.AreEqual(new[] { "b", "d" },
                (await connection.QueryAsync<string>($"select name from {table} where id = any(@ids) order by id", new { ids })).ToArray());
            CollectionAssert.AreEqual(new[] { "b", "d" },
                connection.Query<string>($"select name from {table} where id = any(@ids) order by id", new { ids }).ToArray());
            Assert.AreEqual(3, await connection.ExecuteScalarAsync<int>("select cardinality(@ids)", new { ids }));
        }
        finally
        {
            connection.DropTable(table);
        }
    }

    [TestMethod]
    public async Task JsonbParameter_RoundTrips_AsNpgsqlParameterAndThroughDapper()
    {
        using var pool = CreatePgbPool();
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
            await connection.ExecuteAsync($"insert into {table} (id, doc) values (@id, @doc::jsonb)", new { id = 2, doc = """{"name": "dapper"}""" });
            Assert.AreEqual("jsonb", await connection.ExecuteScalarAsync<string>($"select pg_typeof(doc)::text from {table} where id = 1"));
            Assert.AreEqual("covet", await connection.ExecuteScalarAsync<string>($"select doc->>'name' from {table} where doc @> @probe::jsonb",
                new { probe = """{"tags": ["b"]}""" }));
            Assert.AreEqual("dapper", await connection.QueryFirstAsync<string>($"select doc->>'name' from {table} where id = @id", new { id = 2 }));
        }
        finally
        {
            await connection.ExecuteAsync($"drop table {table}");
        }
    }

    [TestMethod]
    public async Task QueryMultipleAndExecuteScalar_InsideOneTransaction_RunOnOneBackend()
    {
        // Inside a transaction pgbouncer pins one server connection: every statement of it sees the same backend.
        using var pool = CreatePgbPool();
        await using var connection = await pool.OpenAsync();
        await using var tx = await connection.BeginTransactionAsync();
        var pid = await connection.ExecuteScalarAsync<int>("select pg_backend_pid()", transaction: tx);
        await using (var grid = await connection.QueryMultipleAsync("select pg_backend_pid(); select txid_current()", transaction: tx))
        {
            Assert.AreEqual(pid, await grid.ReadSingleAsync<int>());
            Assert.IsGreaterThan(0L, await grid.ReadSingleAsync<long>());
        }
        Assert.AreEqual(pid, connection.ExecuteScalar<int>("select pg_backend_pid()", transaction: tx));
        await tx.CommitAsync();
    }
}

[TestClass]
public sealed class PgbouncerResetOffDapperTests : PgbouncerDapperTests
{
    [ClassInitialize]
    public static void RequirePgbouncer(TestContext context)
    {
        _ = context;
        Pgb.RequireReachable();
    }

    private protected override bool Reset => false;
}

[TestClass]
public sealed class PgbouncerResetOnDapperTests : PgbouncerDapperTests
{
    [ClassInitialize]
    public static void RequirePgbouncer(TestContext context)
    {
        _ = context;
        Pgb.RequireReachable();
    }

    private protected override bool Reset => true;
}
