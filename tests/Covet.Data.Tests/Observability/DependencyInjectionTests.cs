using System.Data.Common;
using Covet.Data.Tests.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Covet.Data.Tests.Observability;

[TestClass]
public sealed class DependencyInjectionTests
{
    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [TestMethod]
    public async Task AddCovetDataSource_BindsOptionsFromConfiguration_AndRegistersDataSourceAndConnections()
    {
        var config = Config(("Covet:MaxPoolSize", "7"), ("Covet:AcquireTimeout", "00:00:05"), ("Covet:PrePing", "false"));
        var services = new ServiceCollection();
        services.AddCovetDataSource(new FakeDbProviderFactory(), "Database=di", config.GetSection("Covet"), o => o.PoolName = "di-pool");
        await using var provider = services.BuildServiceProvider();

        var source = provider.GetRequiredService<CovetDataSource>();
        Assert.AreEqual(7, source.Options.MaxPoolSize);
        Assert.AreEqual(TimeSpan.FromSeconds(5), source.Options.AcquireTimeout);
        Assert.IsFalse(source.Options.PrePing);
        Assert.AreEqual("di-pool", source.PoolName);
        Assert.AreSame(source, provider.GetRequiredService<DbDataSource>());

        var connection = provider.GetRequiredService<DbConnection>();
        Assert.IsInstanceOfType<CovetDbConnection>(connection);
        await connection.OpenAsync();
        Assert.AreEqual(1, source.GetStatistics().InUse);
        await connection.DisposeAsync();
        Assert.AreNotSame(connection, provider.GetRequiredService<DbConnection>(), "connections are transient by default");
    }

    [TestMethod]
    public void AddCovetDataSource_InvalidConfiguration_FailsAtStartupNamingTheSetting()
    {
        var config = Config(("Covet:MinPoolSize", "10"), ("Covet:MaxPoolSize", "5"));
        var services = new ServiceCollection();
        services.AddCovetDataSource(new FakeDbProviderFactory(), "Database=di", config.GetSection("Covet"));
        using var provider = services.BuildServiceProvider();

        var error = Assert.ThrowsExactly<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        StringAssert.Contains(error.Message, "MinPoolSize");
    }

    [TestMethod]
    public async Task AddCovetDataSource_Keyed_RegistersIsolatedPoolsPerKey()
    {
        var services = new ServiceCollection();
        services.AddCovetDataSource(new FakeDbProviderFactory(), "Database=orders", configure: o => o.MaxPoolSize = 2, serviceKey: "orders");
        services.AddCovetDataSource(new FakeDbProviderFactory(), "Database=billing", configure: o => o.MaxPoolSize = 4, serviceKey: "billing");
        await using var provider = services.BuildServiceProvider();

        var orders = provider.GetRequiredKeyedService<CovetDataSource>("orders");
        var billing = provider.GetRequiredKeyedService<CovetDataSource>("billing");
        Assert.AreNotSame(orders, billing);
        Assert.AreEqual(2, orders.Options.MaxPoolSize);
        Assert.AreEqual(4, billing.Options.MaxPoolSize);
        Assert.IsInstanceOfType<CovetDbConnection>(provider.GetRequiredKeyedService<DbConnection>("billing"));
    }
}
