using System.Data;
using System.Data.Common;
using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace Covet.Data.Tests.Wrappers;

[TestClass]
public sealed class ConnectionTests
{
    [TestMethod]
    public async Task StateChange_FiresOnOpenAndClose()
    {
        await using var pool = TestPool.Create();
        await using var connection = pool.Source.CreateConnection();
        var events = new List<(ConnectionState From, ConnectionState To)>();
        connection.StateChange += (_, e) => events.Add((e.OriginalState, e.CurrentState));

        await connection.OpenAsync();
        await connection.CloseAsync();
        await connection.CloseAsync();     // already closed: no event
        connection.Open();
        connection.Dispose();              // dispose closes

        CollectionAssert.AreEqual(new[]
        {
            (ConnectionState.Closed, ConnectionState.Open),
            (ConnectionState.Open, ConnectionState.Closed),
            (ConnectionState.Closed, ConnectionState.Open),
            (ConnectionState.Open, ConnectionState.Closed),
        }, events);
    }

    [TestMethod]
    public void StateChange_NotFiredWhenOpenFails()
    {
        using var pool = TestPool.Create();
        pool.Server.FailNextOpens = 1;
        using var connection = pool.Source.CreateConnection();
        var events = 0;
        connection.StateChange += (_, _) => events++;
        Assert.ThrowsExactly<FakeDbException>(connection.Open);
        Assert.AreEqual(0, events);
        Assert.AreEqual(ConnectionState.Closed, connection.State);
    }

    [TestMethod]
    public void ServerVersion_ThrowsWhenClosed_AndIsTheProvidersWhenOpen()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        Assert.ThrowsExactly<InvalidOperationException>(() => _ = connection.ServerVersion);
        connection.Open();
        Assert.AreEqual("1.0", connection.ServerVersion);
        connection.Close();
        Assert.ThrowsExactly<InvalidOperationException>(() => _ = connection.ServerVersion);
    }

    [TestMethod]
    public void Metadata_IsAvailableWhileClosed()
    {
        using var pool = TestPool.Create(connectionString: "Data Source=fake;Database=orders");
        using var connection = pool.Source.CreateConnection();
        Assert.AreEqual("orders", connection.Database);
        Assert.AreEqual("fake", connection.DataSource);
        Assert.AreEqual(15, connection.ConnectionTimeout);
        Assert.AreEqual(pool.Source.ConnectionString, connection.ConnectionString);
        Assert.AreEqual(0, pool.Server.TotalOpened);
    }

    [TestMethod]
    public void Open_Twice_Throws()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Open();
        Assert.ThrowsExactly<InvalidOperationException>(connection.Open);
        Assert.AreEqual(1, pool.Stats.InUse);
    }

    [TestMethod]
    public void UnderlyingConnection_IsTheProvidersConnection_AndUnavailableWhenClosed()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        Assert.ThrowsExactly<InvalidOperationException>(() => _ = connection.UnderlyingConnection);
        connection.Open();
        Assert.IsInstanceOfType<FakeDbConnection>(connection.UnderlyingConnection);
        Assert.AreEqual(ConnectionState.Open, connection.UnderlyingConnection.State);
    }

    [TestMethod]
    public void ChangeDatabase_ConnectionIsNotRepooled()
    {
        using var pool = TestPool.Create();
        using (var connection = pool.Open())
        {
            connection.ChangeDatabase("other");
            Assert.AreEqual("other", connection.Database);
        }
        Assert.AreEqual(0, pool.Stats.Total);
        using var next = pool.Open();
        Assert.AreEqual("covet_test", next.Database);
    }

    [TestMethod]
    public void GetProviderFactory_OfAConnection_IsTheCovetFactory()
    {
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        Assert.AreSame(pool.Source.Factory, DbProviderFactories.GetFactory(connection));
        connection.Open();
        Assert.AreSame(pool.Source.Factory, DbProviderFactories.GetFactory(connection));
    }

    [TestMethod]
    public void DbDataSource_OpenConnection_Works()
    {
        using var pool = TestPool.Create();
        DbDataSource source = pool.Source;
        using var connection = source.OpenConnection();
        Assert.IsInstanceOfType<CovetDbConnection>(connection);
        Assert.AreEqual(ConnectionState.Open, connection.State);
        Assert.AreEqual(1, connection.QueryScalar("SELECT 1"));
    }

    [TestMethod]
    public void Open_AfterTheDataSourceWasDisposed_Throws()
    {
        using var pool = TestPool.Create();
        var connection = pool.Source.CreateConnection();
        pool.Source.Dispose();

        Assert.ThrowsExactly<ObjectDisposedException>(connection.Open, "a disposed data source must not hand out connections");
        Assert.AreEqual(0, pool.Server.TotalOpened, "a physical connection was opened for a disposed data source");
        connection.Dispose();
    }

    [TestMethod]
    public void ConnectionString_OfADataSourceConnection_SetWhileClosed_LeavesTheDataSource()
    {
        // As the providers' data-source connections do: a string of its own makes it a factory connection of that string.
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        connection.ConnectionString = "Database=elsewhere";
        connection.Open();
        Assert.AreEqual(0, pool.Stats.InUse, "the data source's pool lent nothing");
        Assert.AreEqual("Database=elsewhere", connection.ConnectionString);
    }

    [TestMethod]
    public void ConnectionString_OfAnOpenFactoryConnection_CannotBeChanged()
    {
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(), new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });
        using var connection = factory.CreateConnection();
        connection.ConnectionString = "Database=a";
        connection.Open();
        Assert.ThrowsExactly<InvalidOperationException>(() => connection.ConnectionString = "Database=b");
    }

    [TestMethod]
    public void GetSchema_OfAClosedConnection_IsTheProvidersAnswer()
    {
        // Closed: asked of an unopened provider connection, so the provider's own answer (here the fake's exception).
        using var pool = TestPool.Create();
        using var connection = pool.Source.CreateConnection();
        using var provider = new FakeDbProviderFactory().CreateConnection()!;
        var expected = Assert.Throws<Exception>(() => provider.GetSchema()).GetType();
        Assert.AreEqual(expected, Assert.Throws<Exception>(() => connection.GetSchema()).GetType());
    }
}
