using Covet.Data.Tests.Fakes;
using Dapper;
using Microsoft.Extensions.Time.Testing;

namespace Covet.Data.Tests.Pooling;

[TestClass]
public sealed class SmokeTests
{
    [TestMethod]
    public async Task OpenClose_ReusesOnePhysicalConnection()
    {
        var server = new FakeServer();
        await using var source = CovetDataSource.Create(new FakeDbProviderFactory(server), "Database=x", new CovetPoolOptions { MaxPoolSize = 5 });
        for (var i = 0; i < 10; i++)
        {
            await using var conn = source.CreateConnection();
            await conn.OpenAsync();
            Assert.AreEqual(1, await conn.ExecuteScalarAsync<int>("SELECT 1"));
        }
        Assert.AreEqual(1, server.TotalOpened);
        var stats = source.GetStatistics();
        Assert.AreEqual(1, stats.Total);
        Assert.AreEqual(1, stats.Idle);
        Assert.AreEqual(10, stats.Checkouts);
    }

    [TestMethod]
    public void Dapper_OpensAndClosesItself()
    {
        var server = new FakeServer();
        using var source = CovetDataSource.Create(new FakeDbProviderFactory(server), "Database=x");
        using var conn = source.CreateConnection();
        var rows = conn.Query<int>("SELECT * FROM numbers(3)").ToList();
        CollectionAssert.AreEqual(new[] { 1, 2, 3 }, rows);
        var unbuffered = conn.Query<int>("SELECT * FROM numbers(4)", buffered: false).ToList();
        Assert.AreEqual(4, unbuffered.Count);
        Assert.AreEqual(System.Data.ConnectionState.Closed, conn.State);
        Assert.AreEqual(0, source.GetStatistics().InUse);
        Assert.AreEqual(1, server.OpenConnections);
    }
}
