using System.Data;
using Dapper;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// A borrowed connection killed server-side: the borrower gets the provider's own exception, and after Close the dead
/// physical connection is closed rather than re-pooled (the next borrower is on a different backend), with consistent stats.
/// </summary>
[TestClass]
public sealed class BrokenConnectionTests
{
    private static void AssertConsistent(CovetPoolStatistics stats)
    {
        Assert.AreEqual(stats.Total, stats.Idle + stats.InUse, stats.ToString());
        Assert.AreEqual(0, stats.InUse, stats.ToString());
    }

    // ------------------------------------------------------------------------------------------------ PostgreSQL

    [TestMethod]
    public async Task Postgres_BackendTerminatedWhileBorrowed_BorrowerGetsNpgsqlException_AndItIsNotRepooled()
    {
        using var pool = new PgTestPool(nameof(Postgres_BackendTerminatedWhileBorrowed_BorrowerGetsNpgsqlException_AndItIsNotRepooled));
        int pid;
        await using (var connection = await pool.OpenAsync())
        {
            pid = await connection.ExecuteScalarAsync<int>("select pg_backend_pid()");
            await Pg.TerminateAsync([pid]);
            await Assert.ThrowsAsync<NpgsqlException>(() => connection.ExecuteScalarAsync<int>("select 1"));
        }

        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        AssertConsistent(stats);
        Assert.AreEqual(0, stats.Total, "the dead connection was closed, not put back");
        Assert.AreEqual(1L, stats.ConnectionsDestroyed);

        await using var next = await pool.OpenAsync();
        Assert.AreNotEqual(pid, await next.ExecuteScalarAsync<int>("select pg_backend_pid()"));
        Assert.AreEqual(1, await pool.ServerConnectionsAsync());
    }

    [TestMethod]
    public void Postgres_BackendTerminatedInsideATransaction_SyncCallerGetsNpgsqlException_AndCloseDoesNotThrow()
    {
        using var pool = new PgTestPool(nameof(Postgres_BackendTerminatedInsideATransaction_SyncCallerGetsNpgsqlException_AndCloseDoesNotThrow));
        var connection = pool.Open();
        var pid = connection.ExecuteScalar<int>("select pg_backend_pid()");
        var tx = connection.BeginTransaction();
        connection.ExecuteScalar<int>("select 1", transaction: tx);
        Pg.TerminateAsync([pid]).GetAwaiter().GetResult();

        Assert.Throws<NpgsqlException>(() => connection.ExecuteScalar<int>("select 1", transaction: tx));
        Assert.Throws<Exception>(tx.Commit, "committing on a dead connection fails");
        connection.Close(); // with the transaction still formally open: the pool must not try to roll it back on a live path
        connection.Dispose();

        var stats = Poll.UntilNothingInUseAsync(pool.DataSource).GetAwaiter().GetResult();
        AssertConsistent(stats);
        Assert.AreEqual(0, stats.Total);
        using var next = pool.Open();
        Assert.AreNotEqual(pid, next.ExecuteScalar<int>("select pg_backend_pid()"));
    }

    [TestMethod]
    public async Task Postgres_AfterOneConnectionDiesUnderABorrower_ItsHotSiblingsArePingedBeforeUse()
    {
        // All idle connections are killed while still inside the alive window (so normally they would skip the ping).
        // At most the first borrower can meet a dead one; its failure makes the pool validate every sibling.
        using var pool = new PgTestPool(nameof(Postgres_AfterOneConnectionDiesUnderABorrower_ItsHotSiblingsArePingedBeforeUse));
        var held = new List<CovetDbConnection>();
        for (var i = 0; i < 4; i++)
            held.Add(await pool.OpenAsync());
        foreach (var connection in held)
            await connection.CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle == 4, "four idle connections");
        await Pg.TerminateAsync(await pool.ServerPidsAsync());

        var failures = 0;
        for (var i = 0; i < 20; i++)
        {
            try
            {
                await using var connection = await pool.OpenAsync();
                await connection.ExecuteScalarAsync<int>("select 1");
            }
            catch (NpgsqlException)
            {
                failures++;
            }
        }
        Assert.IsLessThanOrEqualTo(1, failures, "only the borrower who discovered the dead server may fail");
        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        AssertConsistent(stats);
        Assert.IsGreaterThanOrEqualTo(3L, stats.PrePingFailures, stats.ToString());
    }

    // ------------------------------------------------------------------------------------------------ MariaDB

    [TestMethod]
    public async Task MariaDb_ConnectionKilledWhileBorrowed_BorrowerGetsMySqlException_AndItIsNotRepooled()
    {
        using var pool = new MySqlTestPool();
        long id;
        await using (var connection = await pool.OpenAsync())
        {
            id = await connection.ExecuteScalarAsync<long>("select connection_id()");
            await MySql.KillAsync([id]);
            await Assert.ThrowsAsync<MySqlException>(() => connection.ExecuteScalarAsync<int>("select 1"));
        }

        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        AssertConsistent(stats);
        Assert.AreEqual(0, stats.Total, "the dead connection was closed, not put back");

        await using var next = await pool.OpenAsync();
        Assert.AreNotEqual(id, await next.ExecuteScalarAsync<long>("select connection_id()"));
        Assert.AreEqual(1, await pool.ServerConnectionsAsync());
    }

    [TestMethod]
    public void MariaDb_ConnectionKilledWhileBorrowed_SyncCallerGetsMySqlException_AndTheNextBorrowerImmediatelyAfterIsFine()
    {
        using var pool = new MySqlTestPool();
        long id;
        using (var connection = pool.Open())
        {
            id = connection.ExecuteScalar<long>("select connection_id()");
            MySql.KillAsync([id]).GetAwaiter().GetResult();
            Assert.Throws<MySqlException>(() => connection.ExecuteScalar<int>("select 1"));
        }
        // Immediately, well inside the alive window: the dead connection must not be what the next borrower gets.
        using var next = pool.Open();
        Assert.AreNotEqual(id, next.ExecuteScalar<long>("select connection_id()"));
        Assert.AreEqual(ConnectionState.Open, next.State);
    }
}
