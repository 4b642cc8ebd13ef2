using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

[TestClass]
public sealed class BrokenConnectionTests
{
    [TestMethod]
    public async Task Close_AfterBreakCommand_DestroysThePhysicalConnection()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        FakeDbConnection broken;
        await using (var connection = await pool.OpenAsync())
        {
            broken = (FakeDbConnection)connection.UnderlyingConnection;
            var e = await Assert.ThrowsExactlyAsync<FakeDbException>(() => connection.ExecAsync("BREAK"));
            Assert.AreEqual(FakeDbException.AdminShutdownState, e.SqlState);
        }

        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(0, pool.Server.OpenConnections);
        Assert.IsTrue(broken.IsDisposed);
        Assert.IsTrue(pool.LogsWithId(2003).Any(r => r.Message.Contains("broken", StringComparison.Ordinal)));

        await using var next = await pool.OpenAsync();
        Assert.AreNotSame(broken, next.UnderlyingConnection);
        Assert.AreEqual(1, await next.QueryScalarAsync("SELECT 1"));
        Assert.AreEqual(2, pool.Server.TotalOpened);
    }

    [TestMethod]
    public void Close_Sync_AfterBreakCommand_DestroysThePhysicalConnection()
    {
        using var pool = TestPool.Create();
        using (var connection = pool.Open())
            Assert.ThrowsExactly<FakeDbException>(() => connection.QueryScalar("BREAK"));

        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(0, pool.Server.OpenConnections);
    }

    [TestMethod]
    public async Task Close_AfterServerKillAndFailedQuery_DestroysThePhysicalConnection()
    {
        await using var pool = TestPool.Create(o => o.PrePing = false);
        var connection = await pool.OpenAsync();
        pool.Server.KillAll();
        await Assert.ThrowsExactlyAsync<FakeDbException>(() => connection.QueryScalarAsync("SELECT 1"));
        await connection.CloseAsync();

        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(0, pool.Stats.Idle);
        await using var next = await pool.OpenAsync();
        Assert.AreEqual(1, await next.QueryScalarAsync("SELECT 1"));
    }

    [TestMethod]
    public async Task Close_AfterBreakInsideReaderPath_DestroysThePhysicalConnection()
    {
        await using var pool = TestPool.Create();
        await using (var connection = await pool.OpenAsync())
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "BREAK";
            await Assert.ThrowsExactlyAsync<FakeDbException>(() => command.ExecuteReaderAsync());
        }
        Assert.AreEqual(0, pool.Stats.Total);
    }

    [TestMethod]
    public async Task Close_AfterBreakInsideTransaction_DestroysThePhysicalConnection()
    {
        await using var pool = TestPool.Create();
        await using (var connection = await pool.OpenAsync())
        {
            var transaction = await connection.BeginTransactionAsync();
            await Assert.ThrowsExactlyAsync<FakeDbException>(() => connection.ExecAsync("BREAK", transaction));
            await Assert.ThrowsAsync<Exception>(() => transaction.CommitAsync());
        }
        Assert.AreEqual(0, pool.Stats.Total);
        Assert.AreEqual(0, pool.Server.OpenConnections);
    }

    [TestMethod]
    public async Task Close_AfterQueryError_KeepsTheConnectionPooled()
    {
        await using var pool = TestPool.Create();
        await using (var connection = await pool.OpenAsync())
            await Assert.ThrowsExactlyAsync<FakeDbException>(() => connection.ExecAsync("FAIL"));

        Assert.AreEqual(1, pool.Stats.Idle);
        await using var next = await pool.OpenAsync();
        Assert.AreEqual(1, pool.Server.TotalOpened, "a query error must not cost the physical connection");
    }

    [TestMethod]
    public async Task Close_BrokenConnectionWithWaiter_WaiterGetsAFreshConnection()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 1);
        var holder = await pool.OpenAsync();
        var broken = holder.UnderlyingConnection;
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();

        await Assert.ThrowsExactlyAsync<FakeDbException>(() => holder.ExecAsync("BREAK"));
        await holder.CloseAsync();
        await open.Bounded();

        Assert.AreNotSame(broken, waiter.UnderlyingConnection);
        Assert.AreEqual(1, await waiter.QueryScalarAsync("SELECT 1"));
        Assert.AreEqual(1, pool.Stats.Total);
    }
}
