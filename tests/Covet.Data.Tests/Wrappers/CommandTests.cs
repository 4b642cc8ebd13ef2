using System.Data;
using System.Data.Common;
using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace Covet.Data.Tests.Wrappers;

[TestClass]
public sealed class CommandTests
{
    private static readonly int ProviderDefaultTimeout = new FakeDbCommand().CommandTimeout;

    [TestMethod]
    public async Task Command_CreatedBeforeOpen_RunsOnTheConnectionOpenedLater()
    {
        await using var pool = TestPool.Create();
        await using var connection = pool.Source.CreateConnection();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT @p";
        var parameter = command.CreateParameter();
        parameter.ParameterName = "p";
        parameter.Value = 9;
        command.Parameters.Add(parameter);

        await connection.OpenAsync();
        Assert.AreEqual(9, await command.ExecuteScalarAsync());
        Assert.AreEqual(9, command.ExecuteScalar());
    }

    [TestMethod]
    public async Task Command_ReusedAcrossReopen_RunsOnTheNewPhysicalConnection()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 2);
        await using var connection = await pool.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT 3";
        Assert.AreEqual(3, await command.ExecuteScalarAsync());
        await connection.CloseAsync();

        await using var other = await pool.OpenAsync();          // takes the idle physical
        await connection.OpenAsync();                             // gets a new one
        Assert.AreEqual(3, await command.ExecuteScalarAsync());
        Assert.AreEqual(0, pool.Server.ConcurrentUseViolations);
        Assert.AreSame(connection.UnderlyingConnection, ((CovetDbCommand)command).InnerCommand.Connection);
    }

    [TestMethod]
    public async Task Parameters_AreTheProvidersOwnObjects()
    {
        await using var pool = TestPool.Create();
        await using var connection = await pool.OpenAsync();
        await using var command = connection.CreateCommand();

        Assert.IsInstanceOfType<FakeDbParameter>(command.CreateParameter());
        Assert.IsInstanceOfType<FakeDbParameterCollection>(command.Parameters);
        Assert.AreSame(((CovetDbCommand)command).InnerCommand.Parameters, command.Parameters);
        Assert.IsInstanceOfType<FakeDbParameter>(pool.Source.Factory.CreateParameter());
    }

    [TestMethod]
    public async Task Readers_AreTheProvidersOwnUnlessCloseConnectionWasAsked()
    {
        await using var pool = TestPool.Create();
        await using var connection = await pool.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT * FROM numbers(2)";

        await using (var reader = await command.ExecuteReaderAsync())
            Assert.IsInstanceOfType<FakeDbDataReader>(reader);

        await using (var reader = await command.ExecuteReaderAsync(CommandBehavior.CloseConnection))
        {
            Assert.IsInstanceOfType<CovetDbDataReader>(reader);
            Assert.IsTrue(await reader.ReadAsync());
            Assert.AreEqual(1, reader.GetInt32(0));
        }
        Assert.AreEqual(ConnectionState.Closed, connection.State);
        Assert.AreEqual(0, pool.Stats.InUse);
        Assert.AreEqual(1, pool.Server.OpenConnections, "CloseConnection returns the logical connection; the physical one stays open");
    }

    [TestMethod]
    public void Reader_Sync_WithCloseConnection_ReturnsTheConnectionOnClose()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT * FROM numbers(3)";
        var reader = command.ExecuteReader(CommandBehavior.CloseConnection);
        var count = 0;
        while (reader.Read())
            count++;
        Assert.AreEqual(3, count);
        Assert.AreEqual(1, pool.Stats.InUse);
        reader.Close();
        Assert.AreEqual(0, pool.Stats.InUse);
        Assert.AreEqual(1, pool.Server.OpenConnections);
        reader.Dispose();
        Assert.AreEqual(0, pool.Stats.InUse);
    }

    [TestMethod]
    public async Task ProviderExceptions_PropagateUnchanged()
    {
        await using var pool = TestPool.Create();
        await using var connection = await pool.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "FAIL";

        var sync = Assert.ThrowsExactly<FakeDbException>(() => command.ExecuteNonQuery());
        Assert.AreEqual(FakeDbException.SyntaxErrorState, sync.SqlState);
        Assert.IsNull(sync.InnerException, "the provider's exception must not be wrapped");
        var async = await Assert.ThrowsExactlyAsync<FakeDbException>(() => command.ExecuteScalarAsync());
        Assert.AreEqual(FakeDbException.SyntaxErrorState, async.SqlState);
        await Assert.ThrowsExactlyAsync<FakeDbException>(() => command.ExecuteReaderAsync());
        Assert.ThrowsExactly<FakeDbException>(() => command.ExecuteReader());
        Assert.AreEqual(1, await connection.QueryScalarAsync("SELECT 1"), "a query error leaves the connection usable");
    }

    [TestMethod]
    public async Task Transaction_ConnectionIsTheCovetConnection_AndCommandsPickUpTheInnerTransaction()
    {
        await using var pool = TestPool.Create();
        await using var connection = await pool.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();

        Assert.IsInstanceOfType<CovetDbTransaction>(transaction);
        Assert.AreSame(connection, transaction.Connection);
        Assert.AreEqual(IsolationLevel.ReadCommitted, transaction.IsolationLevel);
        var inner = (FakeDbTransaction)((CovetDbTransaction)transaction).Inner;

        // The command's Transaction is the Covet transaction: Covet hands the provider its own inner transaction.
        await connection.ExecAsync("SET a = 1", transaction);
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT 2";
            command.Transaction = transaction;
            Assert.AreEqual(2, await command.ExecuteScalarAsync());
        }
        await transaction.CommitAsync();

        Assert.IsTrue(inner.IsCommitted);
        CollectionAssert.AreEqual(new[] { "BEGIN", "SET a = 1", "SELECT 2", "COMMIT" }, pool.Server.ExecutedCommands.ToArray());
        Assert.AreEqual(1, await connection.QueryScalarAsync("SELECT 1"), "after commit commands run without a transaction");
    }

    [TestMethod]
    public void Transaction_NotSetOnTheCommand_TheProviderRefusesIt_BeforeAnythingIsSent()
    {
        // As without Covet: a provider that requires the command's Transaction (SQLite, MySqlConnector, the fake) refuses it.
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        using var transaction = connection.BeginTransaction();
        Assert.ThrowsExactly<InvalidOperationException>(() => connection.Exec("SET a = 1"));
        Assert.DoesNotContain("SET a = 1", pool.Server.ExecutedCommands);
    }

    [TestMethod]
    public void Transaction_OfAnotherConnection_TheProviderRefusesIt()
    {
        using var pool = TestPool.Create();
        using var a = pool.Open();
        using var b = pool.Open();
        using var transaction = a.BeginTransaction();
        using var command = b.CreateCommand();
        command.CommandText = "SET a = 1";
        command.Transaction = transaction;
        Assert.ThrowsExactly<InvalidOperationException>(() => command.ExecuteNonQuery());
        Assert.DoesNotContain("SET a = 1", pool.Server.ExecutedCommands);
    }

    [TestMethod]
    public void Transaction_AfterCompletion_ConnectionFollowsTheProvider()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        var transaction = connection.BeginTransaction();
        transaction.Commit();
        Assert.AreEqual(((CovetDbTransaction)transaction).Inner.Connection is null, transaction.Connection is null);
    }

    [TestMethod]
    public void Transaction_DisposedWithoutCommit_RollsBack()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        FakeDbTransaction inner;
        using (var transaction = connection.BeginTransaction(IsolationLevel.Serializable))
        {
            Assert.AreEqual(IsolationLevel.Serializable, transaction.IsolationLevel);
            inner = (FakeDbTransaction)((CovetDbTransaction)transaction).Inner;
            connection.Exec("SET a = 1", transaction);
        }
        Assert.IsTrue(inner.IsRolledBack);
        Assert.AreEqual("ROLLBACK", pool.Server.ExecutedCommands[^1]);
        using var second = connection.BeginTransaction();   // a new one may start
        second.Rollback();
    }

    [TestMethod]
    public void Transaction_Nested_Throws()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        using var transaction = connection.BeginTransaction();
        Assert.ThrowsExactly<InvalidOperationException>(() => connection.BeginTransaction());
    }

    [TestMethod]
    public void CommandTimeout_ByDefault_IsTheProvidersOwn()
    {
        // DefaultCommandTimeout is unset by default: a drop-in must not change how long queries may run.
        using var pool = TestPool.Create();
        Assert.IsNull(pool.Source.Options.DefaultCommandTimeout);
        using var closed = pool.Source.CreateConnection();
        using var before = closed.CreateCommand();
        Assert.AreEqual(ProviderDefaultTimeout, before.CommandTimeout);

        using var open = pool.Open();
        using var after = open.CreateCommand();
        Assert.AreEqual(ProviderDefaultTimeout, ((CovetDbCommand)after).InnerCommand.CommandTimeout);
        Assert.AreEqual(ProviderDefaultTimeout, pool.Source.Factory.CreateCommand().CommandTimeout);
    }

    [TestMethod]
    public void CommandTimeout_WhenTheOptionIsSet_IsApplied()
    {
        using var pool = TestPool.Create(o => o.DefaultCommandTimeout = TimeSpan.FromSeconds(60));
        using var open = pool.Open();
        using var command = open.CreateCommand();
        Assert.AreEqual(60, ((CovetDbCommand)command).InnerCommand.CommandTimeout);
        Assert.AreEqual(60, pool.Source.Factory.CreateCommand().CommandTimeout);
    }

    [TestMethod]
    public void CommandTimeout_SetOnTheCommand_Wins()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        using var command = connection.CreateCommand();
        command.CommandTimeout = 5;
        command.CommandText = "SELECT 1";
        command.ExecuteScalar();
        Assert.AreEqual(5, ((CovetDbCommand)command).InnerCommand.CommandTimeout);
    }

    [TestMethod]
    public void CommandTimeout_FromCovetKeyword_IsApplied()
    {
        using var pool = TestPool.Create(connectionString: "Database=x;Covet.DefaultCommandTimeout=15");
        using var connection = pool.Open();
        using var command = connection.CreateCommand();
        Assert.AreEqual(15, command.CommandTimeout);
    }

    [TestMethod]
    public void CommandTimeout_WhenTheProviderConnectionStringSetsOne_CovetDoesNotOverrideIt()
    {
        // "unless the command, or the provider connection string, sets one": the provider keeps its own timeout.
        using var pool = TestPool.Create(connectionString: "Database=x;Command Timeout=10");
        using var connection = pool.Open();
        using var command = connection.CreateCommand();
        Assert.AreNotEqual(60, command.CommandTimeout, "Covet's default overrode the provider connection string's command timeout");
        Assert.AreEqual(ProviderDefaultTimeout, command.CommandTimeout);
    }

    [TestMethod]
    public void CommandTimeout_FactoryConnectionWhoseStringSetsOne_CommandCreatedBeforeOpen_KeepsProviderTimeout()
    {
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(), new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });
        using var connection = factory.CreateConnection();
        connection.ConnectionString = "Database=x;Command Timeout=10";
        using var command = connection.CreateCommand();      // before Open: the pool is not resolved yet
        connection.Open();
        Assert.AreEqual(ProviderDefaultTimeout, command.CommandTimeout,
            "Covet's default overrode the provider connection string's command timeout for a command created before Open");
    }

    [TestMethod]
    public void Factory_CreateCommand_WrapsTheProvidersCommand()
    {
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(), new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });
        using var command = factory.CreateCommand();
        Assert.IsInstanceOfType<CovetDbCommand>(command);
        Assert.IsInstanceOfType<FakeDbCommand>(((CovetDbCommand)command).InnerCommand);
    }

    [TestMethod]
    public void Factory_Command_BoundToAFactoryConnection_Runs()
    {
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(), new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });
        using var connection = factory.CreateConnection();
        connection.ConnectionString = "Database=x";
        connection.Open();
        using var command = factory.CreateCommand();
        command.Connection = connection;
        command.CommandText = "SELECT 4";
        Assert.AreEqual(4, command.ExecuteScalar());
    }

    [TestMethod]
    public void DataSource_CreateCommand_OpensAndReturnsAConnectionPerExecution()
    {
        using var pool = TestPool.Create();
        using var command = pool.Source.CreateCommand("SELECT 8");
        Assert.AreEqual(8, command.ExecuteScalar());
        Assert.AreEqual(8, command.ExecuteScalar());
        Assert.AreEqual(0, pool.Stats.InUse);
        Assert.AreEqual(1, pool.Server.TotalOpened);
    }
}
