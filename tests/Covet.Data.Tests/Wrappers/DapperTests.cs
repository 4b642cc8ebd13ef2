using System.Data;
using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;
using Dapper;

namespace Covet.Data.Tests.Wrappers;

/// <summary>Dapper opens and closes a closed connection itself; every call must give the physical connection back, not close it.</summary>
[TestClass]
public sealed class DapperTests
{
    private static void AssertReturnedNotClosed(TestPool pool, CovetDbConnection connection)
    {
        Assert.AreEqual(ConnectionState.Closed, connection.State);
        Assert.AreEqual(0, pool.Stats.InUse);
        Assert.AreEqual(1, pool.Stats.Idle);
        Assert.AreEqual(1, pool.Server.OpenConnections, "the physical connection must stay open in the pool");
        Assert.AreEqual(1, pool.Server.TotalOpened);
    }

    [TestMethod]
    public void Query_Buffered_ReturnsRowsAndTheConnection()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        CollectionAssert.AreEqual(new[] { 1, 2, 3 }, connection.Query<int>("SELECT * FROM numbers(3)").ToList());
        CollectionAssert.AreEqual(new[] { 1, 2 }, connection.Query<int>("SELECT * FROM numbers(2)").ToList());
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public void Query_Unbuffered_FullyEnumerated_ReturnsTheConnection()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        var rows = connection.Query<int>("SELECT * FROM numbers(4)", buffered: false);
        Assert.AreEqual(10, rows.Sum());
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public void Query_Unbuffered_AbandonedEarly_ReturnsTheConnection()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        Assert.AreEqual(1, connection.Query<int>("SELECT * FROM numbers(100)", buffered: false).First());
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public void Query_Unbuffered_WhileEnumerating_HoldsTheConnection()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        using (var rows = connection.Query<int>("SELECT * FROM numbers(3)", buffered: false).GetEnumerator())
        {
            Assert.IsTrue(rows.MoveNext());
            Assert.AreEqual(1, pool.Stats.InUse);
            Assert.AreEqual(ConnectionState.Open, connection.State);
        }
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public async Task QueryAsync_AndQueryUnbufferedAsync_ReturnTheConnection()
    {
        await using var pool = TestPool.Create();
        await using var connection = pool.Source.CreateConnection();
        Assert.AreEqual(6, (await connection.QueryAsync<int>("SELECT * FROM numbers(3)")).Sum());
        var sum = 0;
        await foreach (var n in connection.QueryUnbufferedAsync<int>("SELECT * FROM numbers(4)"))
            sum += n;
        Assert.AreEqual(10, sum);
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public void QueryFirst_ExecuteScalar_Execute_ReturnTheConnection()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        Assert.AreEqual(1, connection.QueryFirst<int>("SELECT * FROM numbers(5)"));
        Assert.AreEqual(1, connection.QueryFirstOrDefault<int>("SELECT * FROM numbers(5)"));
        Assert.AreEqual(7, connection.QuerySingle<int>("SELECT 7"));
        Assert.AreEqual(42, connection.ExecuteScalar<int>("SELECT 42"));
        Assert.AreEqual(0, connection.Execute("SET a = 1"));
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public async Task AsyncVariants_ReturnTheConnection()
    {
        await using var pool = TestPool.Create();
        await using var connection = pool.Source.CreateConnection();
        Assert.AreEqual(1, await connection.QueryFirstAsync<int>("SELECT * FROM numbers(5)"));
        Assert.AreEqual(42, await connection.ExecuteScalarAsync<int>("SELECT 42"));
        Assert.AreEqual(0, await connection.ExecuteAsync("SET a = 1"));
        await using (var reader = await connection.ExecuteReaderAsync("SELECT * FROM numbers(2)"))
        {
            Assert.IsTrue(await reader.ReadAsync());
        }
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public void QueryMultiple_ReadsTheResultSetAndReturnsTheConnection()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        using (var grid = connection.QueryMultiple("SELECT * FROM numbers(3)"))
        {
            CollectionAssert.AreEqual(new[] { 1, 2, 3 }, grid.Read<int>().ToList());
            Assert.IsTrue(grid.IsConsumed);
        }
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public void Parameters_ArePassedThroughToTheProvider()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        Assert.AreEqual(17, connection.QuerySingle<int>("SELECT @p", new { p = 17 }));
        Assert.AreEqual("hi", connection.ExecuteScalar<string>("SELECT @p", new { p = "hi" }));
    }

    [TestMethod]
    public void ProviderErrors_PropagateUnchangedThroughDapper()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        var e = Assert.ThrowsExactly<FakeDbException>(() => connection.Execute("FAIL"));
        Assert.AreEqual(FakeDbException.SyntaxErrorState, e.SqlState);
        AssertReturnedNotClosed(pool, connection);
    }

    [TestMethod]
    public void Transaction_DapperCommandsRunInsideIt()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        using (var transaction = connection.BeginTransaction())
        {
            connection.Execute("SET a = 1", transaction: transaction);
            Assert.AreEqual(5, connection.ExecuteScalar<int>("SELECT 5", transaction: transaction));
            transaction.Commit();
        }
        CollectionAssert.AreEqual(new[] { "BEGIN", "SET a = 1", "SELECT 5", "COMMIT" }, pool.Server.ExecutedCommands.ToArray());
    }

    [TestMethod]
    public void OpenConnection_DapperLeavesItOpen()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        connection.Query<int>("SELECT * FROM numbers(2)").ToList();
        connection.Query<int>("SELECT * FROM numbers(2)", buffered: false).ToList();
        Assert.AreEqual(ConnectionState.Open, connection.State);
        Assert.AreEqual(1, pool.Stats.InUse);
    }
}
