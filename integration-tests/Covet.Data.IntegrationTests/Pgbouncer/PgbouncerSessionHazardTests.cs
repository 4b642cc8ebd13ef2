using Dapper;
using Npgsql;

namespace Covet.Data.IntegrationTests.Pgbouncer;

/// <summary>
/// What is unsafe behind pgbouncer in transaction mode, proven on the <c>covet_single</c> database, whose pool is ONE
/// server connection: two Covet data sources (two "app instances", each with its own client connection to pgbouncer) take
/// turns on the same backend, so whatever one leaves in the session the other finds — deterministically. With a larger
/// pool the same happens at random, which is worse. Each hazard has its safe alternative next to it.
/// See SCALING-OUT.md in this folder for the list.
/// </summary>
[TestClass]
public sealed class PgbouncerSessionHazardTests
{
    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void RequirePgbouncer(TestContext context)
    {
        _ = context;
        Pgb.RequireReachable();
    }

    /// <summary>Leaves the single backend clean for the next test (a session-level reset, run as its own transaction).</summary>
    [TestInitialize]
    [TestCleanup]
    public void CleanTheSingleBackend()
    {
        using var connection = Pgb.OpenUnpooled(Pgb.SingleConnectionString, "covet-it-pgb-cleanup");
        connection.Execute("discard all");
    }

    private PgbTestPool Instance(string name, bool reset = false, string? baseConnectionString = null) =>
        new($"{name}-{TestContext.TestName}", PgbTestPool.DefaultOptions(reset, maxPoolSize: 1), baseConnectionString ?? Pgb.SingleConnectionString);

    private static string UniqueSetting() => $"covet.t{Guid.NewGuid():N}";

    // ------------------------------------------------------------------------------------------------ SET

    [TestMethod]
    public async Task SessionSet_OutsideATransaction_LeaksIntoAnotherInstancesTransaction_EvenWithCovetsResetOn()
    {
        var setting = UniqueSetting();
        // Instance A keeps Covet's default reset on: it resets A's *client* connection before A's next borrower, which does
        // nothing for B, who gets the server connection in between.
        using var a = Instance("a", reset: true);
        using var b = Instance("b");

        int pidA;
        await using (var connection = await a.OpenAsync())
        {
            await connection.ExecuteAsync($"set {setting} = 'tenant-a'");
            await connection.ExecuteAsync("set statement_timeout = '4321s'");
            pidA = await connection.ExecuteScalarAsync<int>("select pg_backend_pid()");
        }

        await using (var connection = await b.OpenAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            Assert.AreEqual(pidA, await connection.ExecuteScalarAsync<int>("select pg_backend_pid()", transaction: tx), "the one server connection of covet_single");
            Assert.AreEqual("tenant-a", await connection.ExecuteScalarAsync<string>($"select current_setting('{setting}', true)", transaction: tx),
                "B's transaction runs with the custom setting A set outside a transaction");
            Assert.AreEqual("4321s", await connection.ExecuteScalarAsync<string>("select current_setting('statement_timeout')", transaction: tx),
                "and with A's statement_timeout (not a parameter pgbouncer tracks)");
            await tx.CommitAsync();
        }
        Assert.AreEqual(0L, a.Stats.ResetFailures);
    }

    [TestMethod]
    public async Task SetLocal_InsideATransaction_EndsWithIt_EvenOnTheSameBackend()
    {
        var setting = UniqueSetting();
        using var a = Instance("a");
        using var b = Instance("b");

        int pidA;
        await using (var connection = await a.OpenAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await connection.ExecuteAsync($"set local {setting} = 'tenant-a'", transaction: tx);
            await connection.ExecuteAsync("set local statement_timeout = '4321s'", transaction: tx);
            // set_config(..., is_local => true) is the same as SET LOCAL, and takes a parameter.
            await connection.ExecuteAsync("select set_config('search_path', @path, true)", new { path = "pg_catalog" }, transaction: tx);
            Assert.AreEqual("tenant-a", await connection.ExecuteScalarAsync<string>($"select current_setting('{setting}')", transaction: tx));
            Assert.AreEqual("4321s", await connection.ExecuteScalarAsync<string>("select current_setting('statement_timeout')", transaction: tx));
            pidA = await connection.ExecuteScalarAsync<int>("select pg_backend_pid()", transaction: tx);
            await tx.CommitAsync();
        }

        await using (var connection = await b.OpenAsync())
        {
            Assert.AreEqual(pidA, await connection.ExecuteScalarAsync<int>("select pg_backend_pid()"), "the same backend");
            Assert.IsTrue(string.IsNullOrEmpty(await connection.ExecuteScalarAsync<string>($"select current_setting('{setting}', true)")), "SET LOCAL ended with A's transaction");
            Assert.AreEqual("0", await connection.ExecuteScalarAsync<string>("select current_setting('statement_timeout')"));
            Assert.AreEqual("\"$user\", public", await connection.ExecuteScalarAsync<string>("select current_setting('search_path')"));
        }
    }

    [TestMethod]
    public async Task TrackedStartupParameters_AreRestoredPerClientByPgbouncer_UntilAResetRevertsThem()
    {
        // pgbouncer tracks client_encoding, DateStyle, TimeZone, standard_conforming_strings and application_name per
        // client and re-SETs them when it lends a server connection to another client: those, set in the connection
        // string, are safe. But DISCARD ALL / RESET ALL (Covet's reset, when it is on) reverts them to the values the
        // *server connection* was opened with — pgbouncer's, not the client's — and pgbouncer then records those as the
        // client's own: the client's Timezone and Application Name are gone for the rest of its life.
        var tokyo = new NpgsqlConnectionStringBuilder(Pgb.SingleConnectionString) { Timezone = "Asia/Tokyo" }.ConnectionString;
        using var other = Instance("other");
        using var resetOff = Instance("off", reset: false, tokyo);
        using var resetOn = Instance("on", reset: true, tokyo);

        foreach (var (pool, reset) in new[] { (resetOff, false), (resetOn, true) })
        {
            // Another instance sets the session time zone on the one backend, outside a transaction (the hazard above).
            await using (var connection = await other.OpenAsync())
                await connection.ExecuteAsync("set timezone = 'America/New_York'");
            for (var borrow = 1; borrow <= 3; borrow++)
            {
                await using var connection = await pool.OpenAsync();
                var (zone, name) = await connection.QuerySingleAsync<(string, string)>(
                    "select current_setting('TimeZone'), current_setting('application_name')");
                if (!reset || borrow == 1)
                {
                    Assert.AreEqual("Asia/Tokyo", zone, $"reset {(reset ? "on" : "off")}, borrow {borrow}: pgbouncer re-SET the client's TimeZone");
                    Assert.AreEqual(pool.ApplicationName, name, $"reset {(reset ? "on" : "off")}, borrow {borrow}");
                }
                else
                {
                    // The DISCARD ALL queued by the previous return ran just before this query.
                    Assert.AreNotEqual("Asia/Tokyo", zone, $"reset on, borrow {borrow}: DISCARD ALL reverted the client's TimeZone to the server connection's");
                    Assert.AreNotEqual(pool.ApplicationName, name, $"reset on, borrow {borrow}: and its application_name");
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ advisory locks

    [TestMethod]
    public async Task SessionAdvisoryLock_HeldByOneInstance_IsGrantedToAnotherOnTheSameBackend()
    {
        var key = Random.Shared.NextInt64(1, long.MaxValue);
        using var a = Instance("a");
        using var b = Instance("b");

        await using (var connection = await a.OpenAsync())
            await connection.ExecuteAsync("select pg_advisory_lock(@key)", new { key });

        await using (var connection = await b.OpenAsync())
        {
            Assert.IsTrue(await connection.ExecuteScalarAsync<bool>("select pg_try_advisory_lock(@key)", new { key }),
                "B 'acquires' the lock A holds: session locks belong to the backend, which both share — no mutual exclusion");
            Assert.AreEqual(1L, await connection.ExecuteScalarAsync<long>(
                "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted"
                + " and ((classid::bigint << 32) | objid::bigint) = @key", new { key }), "one lock, held by the shared backend");
        }
        await using (var connection = await b.OpenAsync())
        {
            // And either instance can release it: B unlocks A's lock (twice: it is re-entrant, and B 'took' it once more).
            Assert.IsTrue(await connection.ExecuteScalarAsync<bool>("select pg_advisory_unlock(@key)", new { key }));
            Assert.IsTrue(await connection.ExecuteScalarAsync<bool>("select pg_advisory_unlock(@key)", new { key }));
        }
    }

    [TestMethod]
    public async Task TransactionAdvisoryLock_IsMutualExclusionBehindPgbouncer()
    {
        // The safe alternative: pg_advisory_xact_lock inside a transaction, which pins one server connection until it ends.
        // On the normal pool (several server connections), so the second instance is not simply queued behind the first.
        var key = Random.Shared.NextInt64(1, long.MaxValue);
        using var a = Instance("a", baseConnectionString: Pgb.ConnectionString);
        using var b = Instance("b", baseConnectionString: Pgb.ConnectionString);

        await using var holder = await a.OpenAsync();
        await using (var tx = await holder.BeginTransactionAsync())
        {
            await holder.ExecuteAsync("select pg_advisory_xact_lock(@key)", new { key }, tx);
            await using (var contender = await b.OpenAsync())
            await using (var other = await contender.BeginTransactionAsync())
            {
                Assert.IsFalse(await contender.ExecuteScalarAsync<bool>("select pg_try_advisory_xact_lock(@key)", new { key }, other),
                    "another instance cannot take the lock while A's transaction holds it");
                await other.RollbackAsync();
            }
            await tx.CommitAsync();
        }
        await using (var contender = await b.OpenAsync())
        await using (var other = await contender.BeginTransactionAsync())
        {
            Assert.IsTrue(await contender.ExecuteScalarAsync<bool>("select pg_try_advisory_xact_lock(@key)", new { key }, other),
                "released when A's transaction ended");
            await other.CommitAsync();
        }
    }

    // ------------------------------------------------------------------------------------------------ temp tables

    [TestMethod]
    public async Task TempTable_CreatedOutsideATransaction_IsVisibleToAnotherInstance()
    {
        var table = Sql.UniqueTable("tmp");
        using var a = Instance("a");
        using var b = Instance("b");

        await using (var connection = await a.OpenAsync())
        {
            await connection.ExecuteAsync($"create temp table {table} (secret text)");
            await connection.ExecuteAsync($"insert into {table} values ('a''s data')");
        }
        await using (var connection = await b.OpenAsync())
            Assert.AreEqual("a's data", await connection.ExecuteScalarAsync<string>($"select secret from pg_temp.{table}"),
                "B reads A's temp table: temp tables belong to the backend");

        // Safe: ON COMMIT DROP inside a transaction.
        await using (var connection = await a.OpenAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await connection.ExecuteAsync($"create temp table {table}_tx (id int) on commit drop", transaction: tx);
            await connection.ExecuteAsync($"insert into {table}_tx values (1)", transaction: tx);
            await tx.CommitAsync();
        }
        await using (var connection = await b.OpenAsync())
            Assert.IsNull(await connection.ExecuteScalarAsync<string>($"select to_regclass('pg_temp.{table}_tx')::text"));
    }

    // ------------------------------------------------------------------------------------------------ prepared statements

    [TestMethod]
    public async Task ProtocolPreparedStatements_OfTwoInstances_CollideOnTheSharedBackend()
    {
        // pgbouncer 1.18 (Debian bookworm) does not track protocol-level prepared statements (1.21+ can, with
        // max_prepared_statements > 0). Npgsql names them _p1, _p2, ... per physical connection: two clients that prepare
        // on one backend collide; with several backends the statement is missing where the next transaction lands.
        using var a = Instance("a");
        using var b = Instance("b");

        await using (var connection = await a.OpenAsync())
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "select 1";
            command.Prepare();
            Assert.AreEqual(1, Convert.ToInt32(await command.ExecuteScalarAsync()));
        }
        await using (var connection = await b.OpenAsync())
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "select 2";
            var error = Assert.ThrowsExactly<PostgresException>(() => command.Prepare());
            Assert.AreEqual(PostgresErrorCodes.DuplicatePreparedStatement, error.SqlState, error.Message);
            // Unprepared statements (the default: Max Auto Prepare=0) are fine.
            Assert.AreEqual(2L, await connection.ExecuteScalarAsync<long>("select 2::bigint"));
        }
    }

    // ------------------------------------------------------------------------------------------------ open transactions

    [TestMethod]
    public async Task SqlBeginLeftOpen_WithResetOff_IsRolledBack_AndPinsNoServerConnection()
    {
        // With ResetSessionOnReturn=false Covet still rolls back a transaction left open, also one opened with SQL
        // (BEGIN), as Npgsql's own pool does with No Reset On Close. Behind pgbouncer this matters more than directly: a
        // client left idle in transaction holds its server connection, and a few of those starve the whole pgbouncer pool.
        var table = Sql.UniqueTable();
        using var off = Instance("off", reset: false, Pgb.ConnectionString);
        using var on = Instance("on", reset: true, Pgb.ConnectionString);
        await using (var setup = await off.OpenAsync())
            setup.CreateRowsTable(table);
        try
        {
            await using (var connection = await off.OpenAsync())
            {
                await connection.ExecuteAsync("begin transaction");
                await connection.ExecuteAsync($"insert into {table} (id, name) values (1, 'uncommitted')");
            }
            await Poll.UntilNothingInUseAsync(off.DataSource);
            Assert.AreEqual(0, (await Pgb.BackendsAsync(off.ApplicationName)).Busy,
                "after Close, no backend stays 'idle in transaction' for the idle Covet connection");
            await using (var connection = await off.OpenAsync())
                Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"),
                    "the next borrower does not run inside the previous borrower's transaction");

            // A DbTransaction left open is rolled back with reset off too.
            await using (var connection = await off.OpenAsync())
            {
                var tx = await connection.BeginTransactionAsync();
                await connection.ExecuteAsync($"insert into {table} (id, name) values (2, 'uncommitted')", transaction: tx);
            }
            await using (var connection = await off.OpenAsync())
                Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"));

            // With reset on, the SQL-level transaction is rolled back before anyone else gets the connection.
            await using (var connection = await on.OpenAsync())
            {
                await connection.ExecuteAsync("begin transaction");
                await connection.ExecuteAsync($"insert into {table} (id, name) values (3, 'uncommitted')");
            }
            await Poll.UntilNothingInUseAsync(on.DataSource);
            await using (var connection = await on.OpenAsync())
                Assert.AreEqual(0L, await connection.ExecuteScalarAsync<long>($"select count(*) from {table}"));
        }
        finally
        {
            await using var cleanup = await off.OpenAsync();
            cleanup.DropTable(table);
        }
    }
}
