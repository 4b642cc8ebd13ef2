using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

[TestClass]
public sealed class SessionResetTests
{
    private static TestPool Create(string? resetQuery = "RESET ALL", bool resetOnReturn = true) => TestPool.Create(o =>
    {
        o.MaxPoolSize = 1;
        o.ResetQuery = resetQuery;
        o.ResetSessionOnReturn = resetOnReturn;
    });

    [TestMethod]
    public async Task NextBorrower_DoesNotSeeThePreviousBorrowersSessionState()
    {
        await using var pool = Create();
        await using (var first = await pool.OpenAsync())
        {
            await first.ExecAsync("SET a = 1");
            Assert.AreEqual("1", await first.QueryScalarAsync("SHOW a"));
        }

        await using var second = await pool.OpenAsync();
        Assert.AreEqual(DBNull.Value, await second.QueryScalarAsync("SHOW a"));
        Assert.AreEqual(1, pool.Server.TotalOpened, "the same physical connection, reset");
        Assert.Contains("RESET ALL", pool.Server.ExecutedCommands);
    }

    [TestMethod]
    public void NextBorrower_Sync_DoesNotSeeThePreviousBorrowersSessionState()
    {
        using var pool = Create();
        using (var first = pool.Open())
            first.Exec("SET a = 1");

        using var second = pool.Open();
        Assert.AreEqual(DBNull.Value, second.QueryScalar("SHOW a"));
        Assert.AreEqual(1, pool.Server.TotalOpened);
    }

    [TestMethod]
    public async Task NextBorrower_WithResetSessionOnReturnOff_SeesTheSessionState()
    {
        // The control: without the reset the state is visible, so the test above can fail.
        await using var pool = Create(resetOnReturn: false);
        await using (var first = await pool.OpenAsync())
            await first.ExecAsync("SET a = 1");

        await using var second = await pool.OpenAsync();
        Assert.AreEqual("1", await second.QueryScalarAsync("SHOW a"));
        Assert.DoesNotContain("RESET ALL", pool.Server.ExecutedCommands);
    }

    [TestMethod]
    public async Task NextBorrower_WithoutResetQuery_GenericDialectDoesNotReset()
    {
        await using var pool = Create(resetQuery: null);
        await using (var first = await pool.OpenAsync())
            await first.ExecAsync("SET a = 1");
        await using var second = await pool.OpenAsync();
        Assert.AreEqual("1", await second.QueryScalarAsync("SHOW a"));
    }

    [TestMethod]
    public async Task Close_WithNobodyWaiting_ResetsInTheBackgroundNotOnTheCallersThread()
    {
        await using var pool = Create();
        var connection = await pool.OpenAsync();
        await connection.ExecAsync("SET a = 1");
        pool.Server.CommandLatency = TimeSpan.FromSeconds(1); // on the fake clock: the reset cannot finish until we advance

        try
        {
            var close = Task.Run(connection.Close);
            Assert.IsTrue(await Poll.CompletesAsync(close), "Close waited for the session reset");
            await close;

            await Poll.UntilAsync(() => pool.Server.ExecutedCommands.Contains("RESET ALL"), "the reset started in the background");
            Assert.AreEqual(0, pool.Stats.Idle, "not idle before its reset finished");
            Assert.AreEqual(1, pool.Stats.InUse);
        }
        finally
        {
            pool.Server.CommandLatency = TimeSpan.Zero;
            pool.Time.Advance(TimeSpan.FromSeconds(1));
        }

        await Poll.UntilAsync(() => pool.Stats.Idle == 1, "the reset connection back on the idle stack");
        var physical = pool.OpenedPhysicals.Single();
        Assert.IsFalse(physical.SessionVariables.ContainsKey("a"));
    }

    [TestMethod]
    public async Task Close_WithAWaiter_TheWaiterResetsTheConnectionBeforeUsingIt()
    {
        await using var pool = Create();
        var first = await pool.OpenAsync();
        await first.ExecAsync("SET a = 1");
        await using var second = pool.Source.CreateConnection();
        var open = second.OpenAsync();

        await first.CloseAsync();
        await open.Bounded();
        Assert.AreEqual(DBNull.Value, await second.QueryScalarAsync("SHOW a"));
        var commands = pool.Server.ExecutedCommands;
        Assert.AreEqual("RESET ALL", commands[^2]);
    }

    [TestMethod]
    public async Task Close_WhenTheBorrowerRanNothing_SkipsTheReset()
    {
        await using var pool = Create();
        await using (await pool.OpenAsync())
        {
        }
        await using (await pool.OpenAsync())
        {
        }
        Assert.DoesNotContain("RESET ALL", pool.Server.ExecutedCommands);
    }

    [TestMethod]
    [DataRow("RESET ALL")]
    [DataRow(null)]
    public async Task Close_WithOpenTransaction_RollsItBackBeforeTheNextBorrower(string? resetQuery)
    {
        await using var pool = Create(resetQuery);
        await using (var first = await pool.OpenAsync())
        {
            var transaction = await first.BeginTransactionAsync();
            await first.ExecAsync("SET a = 1", transaction);
            Assert.IsTrue(((FakeDbConnection)first.UnderlyingConnection).InTransaction);
            _ = transaction; // left open on purpose
        }

        await using var second = await pool.OpenAsync();
        var physical = (FakeDbConnection)second.UnderlyingConnection;
        Assert.IsFalse(physical.InTransaction, "the next borrower must not inherit the transaction");
        Assert.Contains("ROLLBACK", pool.Server.ExecutedCommands);
        // A command without a transaction would be refused by the fake if the old one were still open.
        Assert.AreEqual(1, await second.QueryScalarAsync("SELECT 1"));
        Assert.AreEqual(1, pool.Server.TotalOpened);
    }

    [TestMethod]
    public void Close_Sync_WithOpenTransaction_RollsItBackBeforeTheNextBorrower()
    {
        using var pool = Create();
        using (var first = pool.Open())
        {
            var transaction = first.BeginTransaction();
            first.Exec("SET a = 1", transaction);
        }
        using var second = pool.Open();
        Assert.IsFalse(((FakeDbConnection)second.UnderlyingConnection).InTransaction);
        Assert.AreEqual(1, second.QueryScalar("SELECT 1"));
    }

    [TestMethod]
    public async Task Close_WithOpenTransaction_RollbackHappensBeforeTheResetQuery()
    {
        // DISCARD ALL refuses to run inside a transaction: it only succeeds if the rollback came first.
        await using var pool = Create(resetQuery: "DISCARD ALL");
        await using (var first = await pool.OpenAsync())
        {
            var transaction = await first.BeginTransactionAsync();
            await first.ExecAsync("SET a = 1", transaction);
        }
        await using var second = await pool.OpenAsync();

        Assert.AreEqual(0, pool.Stats.ResetFailures);
        var commands = pool.Server.ExecutedCommands.ToList();
        Assert.IsLessThan(commands.IndexOf("DISCARD ALL"), commands.IndexOf("ROLLBACK"));
        Assert.AreEqual(1, pool.Server.TotalOpened);
    }

    [TestMethod]
    public async Task Reset_WhenTheResetQueryFails_DestroysTheConnectionAndCountsIt()
    {
        await using var pool = Create(resetQuery: "FAIL");
        await using (var connection = await pool.OpenAsync())
            await connection.ExecAsync("SET a = 1");

        await Poll.UntilAsync(() => pool.Stats.ResetFailures == 1, "the failed reset counted");
        await Poll.UntilAsync(() => pool.Stats.Total == 0, "the connection destroyed");
        Assert.AreEqual(0, pool.Server.OpenConnections);
        Assert.HasCount(1, pool.LogsWithId(3003));

        await using var next = await pool.OpenAsync();
        Assert.AreEqual(DBNull.Value, await next.QueryScalarAsync("SHOW a"));
        Assert.AreEqual(2, pool.Server.TotalOpened);
    }

    [TestMethod]
    public async Task Reset_WhenTheWaitersResetFails_WaiterGetsAFreshConnection()
    {
        await using var pool = Create(resetQuery: "FAIL");
        var first = await pool.OpenAsync();
        await first.ExecAsync("SET a = 1");
        await using var second = pool.Source.CreateConnection();
        var open = second.OpenAsync();

        await first.CloseAsync();
        await open.Bounded();
        Assert.AreEqual(DBNull.Value, await second.QueryScalarAsync("SHOW a"));
        Assert.AreEqual(1, pool.Stats.ResetFailures);
        Assert.AreEqual(2, pool.Server.TotalOpened);
        Assert.AreEqual(1, pool.Server.OpenConnections);
    }

    [TestMethod]
    public async Task OpenAsync_CancelledWhileResettingAHandedOverConnection_IsNotCountedAsAResetFailure()
    {
        await using var pool = Create();
        var first = await pool.OpenAsync();
        await first.ExecAsync("SET a = 1");
        await using var second = pool.Source.CreateConnection();
        using var cts = new CancellationTokenSource();
        var open = second.OpenAsync(cts.Token);
        var attempts = pool.ProviderConnectionObjects;

        pool.Server.CommandLatency = TimeSpan.FromSeconds(1);   // the waiter's reset hangs on the fake clock
        try
        {
            await first.CloseAsync();
            await Poll.UntilAsync(() => pool.Server.ExecutedCommands.Contains("RESET ALL"), "the waiter resetting the connection");
            await cts.CancelAsync();
            await Assert.ThrowsAsync<OperationCanceledException>(() => open.Bounded());
        }
        finally
        {
            pool.Server.CommandLatency = TimeSpan.Zero;
        }

        // The caller gave up; the reset did not fail. Operators alert on these counters and warnings.
        Assert.AreEqual(0, pool.Stats.ResetFailures, "a caller's cancellation was counted as a failed session reset");
        Assert.IsEmpty(pool.LogsWithId(3003), "a caller's cancellation was logged as a failed session reset");
        Assert.AreEqual(0, pool.Stats.ConnectionFailures, "a caller's cancellation was counted as a failed connection attempt");
        Assert.AreEqual(attempts, pool.ProviderConnectionObjects, "a new physical connection was attempted for a caller who had already cancelled");
        // The reset goes on for the pool: once it ends, the clean connection is idle for the next borrower, not destroyed.
        pool.Time.Advance(TimeSpan.FromSeconds(1));
        await Poll.UntilAsync(() => pool.Stats is { InUse: 0, Idle: 1 }, "the reset finished and the connection given back idle");
        Assert.AreEqual(0, pool.Stats.ConnectionsDestroyed, "a clean connection was destroyed because its waiter cancelled");
    }

    [TestMethod]
    public async Task UnderlyingConnectionUse_IsResetToo()
    {
        await using var pool = Create();
        await using (var first = await pool.OpenAsync())
        {
            using var raw = first.UnderlyingConnection.CreateCommand();
            raw.CommandText = "SET a = 1";
            raw.ExecuteNonQuery();
        }
        await using var second = await pool.OpenAsync();
        Assert.AreEqual(DBNull.Value, await second.QueryScalarAsync("SHOW a"));
    }
}
