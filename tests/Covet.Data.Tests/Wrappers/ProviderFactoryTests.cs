using System.Data.Common;
using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace Covet.Data.Tests.Wrappers;

[TestClass]
public sealed class ProviderFactoryTests
{
    private static CovetProviderFactory NewFactory(FakeServer server) =>
        new(new FakeDbProviderFactory(server), new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });

    [TestMethod]
    public void RegisteredFactory_CreatesPooledConnectionsEndToEnd()
    {
        var server = new FakeServer();
        var factory = NewFactory(server);
        var name = "Covet.Fake." + Guid.NewGuid().ToString("N");   // registrations are process-wide: unique per test
        DbProviderFactories.RegisterFactory(name, factory);
        try
        {
            var resolved = DbProviderFactories.GetFactory(name);
            Assert.AreSame(factory, resolved);
            for (var i = 0; i < 3; i++)
            {
                using var connection = resolved.CreateConnection()!;
                Assert.IsInstanceOfType<CovetDbConnection>(connection);
                connection.ConnectionString = "Data Source=fake;Database=registered;Covet.MaxPoolSize=2";
                connection.Open();
                using var command = resolved.CreateCommand()!;
                command.Connection = connection;
                command.CommandText = "SELECT 11";
                Assert.AreEqual(11, command.ExecuteScalar());
                Assert.AreSame(factory, DbProviderFactories.GetFactory(connection));
            }

            Assert.AreEqual(1, server.TotalOpened, "connections of a registered factory are pooled");
            var stats = factory.GetStatistics().Single();
            Assert.AreEqual(2, stats.MaxPoolSize);
            Assert.AreEqual(3, stats.Checkouts);
        }
        finally
        {
            DbProviderFactories.UnregisterFactory(name);
        }
    }

    [TestMethod]
    public void Factory_CannotWrapAnotherCovetFactory()
    {
        var inner = NewFactory(new FakeServer());
        Assert.ThrowsExactly<ArgumentException>(() => new CovetProviderFactory(inner));
    }

    [TestMethod]
    public void Factory_ConnectionWithoutConnectionString_ThrowsOnOpen()
    {
        var factory = NewFactory(new FakeServer());
        using var connection = factory.CreateConnection();
        Assert.ThrowsExactly<InvalidOperationException>(connection.Open);
    }

    [TestMethod]
    public void Factory_ClearPool_ClosesThatPoolsIdleConnections()
    {
        var server = new FakeServer();
        var factory = NewFactory(server);
        const string a = "Database=a", b = "Database=b";
        foreach (var cs in new[] { a, b })
        {
            using var connection = factory.CreateConnection();
            connection.ConnectionString = cs;
            connection.Open();
        }
        Assert.AreEqual(2, server.OpenConnections);

        factory.ClearPool(a);
        Assert.AreEqual(1, server.OpenConnections);
        factory.ClearAllPools();
        Assert.AreEqual(0, server.OpenConnections);
    }

    [TestMethod]
    public void Factory_DelegatesProviderObjects()
    {
        var factory = NewFactory(new FakeServer());
        Assert.IsInstanceOfType<FakeDbParameter>(factory.CreateParameter());
        Assert.IsInstanceOfType<DbConnectionStringBuilder>(factory.CreateConnectionStringBuilder());
        Assert.IsFalse(factory.CanCreateBatch);
        using var source = factory.CreateDataSource("Database=x");
        Assert.IsInstanceOfType<CovetDataSource>(source);
    }
}
