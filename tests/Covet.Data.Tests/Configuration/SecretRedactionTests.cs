using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Covet.Data.Tests.Configuration;

/// <summary>The password of the connection string must never leak into anything Covet produces.</summary>
[TestClass]
public sealed class SecretRedactionTests
{
    private const string Secret = "s3cret!";
    private const string WithPassword = "Data Source=fake;Database=covet_test;User Id=app;Password=" + Secret;

    private static void AssertNoSecret(string? text, string where)
    {
        if (text is not null)
            Assert.DoesNotContain(Secret, text, StringComparison.Ordinal, $"the password leaked into {where}: {text}");
    }

    private static void AssertNoSecretInLogs(FakeLogCollector logs)
    {
        var records = logs.GetSnapshot();
        Assert.IsNotEmpty(records, "nothing was logged: the check would prove nothing");
        foreach (var record in records)
        {
            AssertNoSecret(record.Message, $"log {record.Id}");
            AssertNoSecret(record.Exception?.ToString(), $"the exception of log {record.Id}");
            foreach (var (key, value) in record.StructuredState ?? [])
                AssertNoSecret(value, $"field {key} of log {record.Id}");
        }
    }

    [TestMethod]
    public void ProviderReceivesPassword_SoTheChecksBelowAreMeaningful()
    {
        using var pool = TestPool.Create(connectionString: WithPassword + ";Covet.MaxPoolSize=2");
        using var connection = pool.Open();
        Assert.Contains(Secret, pool.OpenedPhysicals.Single().OpenedWithConnectionString!);
    }

    [TestMethod]
    public void PoolName_Statistics_AndToString_NeverContainPassword()
    {
        using var pool = TestPool.Create(connectionString: WithPassword + ";Covet.MaxPoolSize=2");
        using var connection = pool.Open();

        AssertNoSecret(pool.Source.PoolName, "PoolName");
        Assert.Contains("covet_test", pool.Source.PoolName, "the pool name should still say which database");
        AssertNoSecret(pool.Source.ToString(), "CovetDataSource.ToString()");
        AssertNoSecret(connection.ToString(), "CovetDbConnection.ToString()");
        AssertNoSecret(pool.Stats.ToString(), "CovetPoolStatistics.ToString()");
        AssertNoSecret(pool.Source.Pool.ToString(), "CovetPool.ToString()");
        AssertNoSecret(pool.Source.Factory.ToString(), "CovetProviderFactory.ToString()");
        foreach (var stats in pool.Source.Factory.GetStatistics())
            AssertNoSecret(stats.ToString(), "factory statistics");
    }

    [TestMethod]
    [DataRow(";Covet.Bogus=1")]
    [DataRow(";Covet.MaxPoolSize=lots")]
    [DataRow(";Covet.PrePing=perhaps")]
    [DataRow(";Covet.AcquireTimeout=soon")]
    [DataRow(";Covet.MinPoolSize=9;Covet.MaxPoolSize=2")]
    [DataRow(";Covet.MaxPoolSize=0")]
    [DataRow(";Covet.AcquireTimeout=0")]
    [DataRow(";Covet.MaxPoolSize=3;Broken='unterminated")]
    public void ConfigurationErrors_NeverContainPassword(string suffix)
    {
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetDataSource.Create(new FakeDbProviderFactory(), WithPassword + suffix, new CovetPoolOptions { TimeProvider = new FakeTimeProvider() }));
        AssertNoSecret(e.Message, "the exception message");
        AssertNoSecret(e.ToString(), "the exception's ToString()");
    }

    [TestMethod]
    public async Task PoolExhausted_MessageAndLogs_NeverContainPassword()
    {
        await using var pool = TestPool.Create(o => { o.MaxPoolSize = 1; o.AcquireTimeout = TimeSpan.FromSeconds(1); }, WithPassword);
        await using var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(1));
        var e = await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => open.Bounded());

        AssertNoSecret(e.ToString(), "CovetPoolExhaustedException");
        AssertNoSecret(e.PoolName, "CovetPoolExhaustedException.PoolName");
        AssertNoSecretInLogs(pool.Logs);
    }

    [TestMethod]
    public async Task CircuitOpenAndConnectFailures_MessagesAndLogs_NeverContainPassword()
    {
        await using var pool = TestPool.Create(o => o.CircuitBreakerFailureThreshold = 1, WithPassword);
        pool.Server.RefuseConnections = true;
        await using var first = pool.Source.CreateConnection();
        var failure = await Assert.ThrowsAsync<Exception>(() => first.OpenAsync());
        AssertNoSecret(failure.ToString(), "the connect failure");
        var open = await Assert.ThrowsExactlyAsync<CovetCircuitOpenException>(() => first.OpenAsync());

        AssertNoSecret(open.ToString(), "CovetCircuitOpenException");
        AssertNoSecretInLogs(pool.Logs);
        Assert.IsNotEmpty(pool.LogsWithId(6001));
    }

    [TestMethod]
    public async Task LeakAndReclaim_MessagesAndLogs_NeverContainPassword()
    {
        await using var pool = TestPool.Create(o =>
        {
            o.LeakDetectionThreshold = TimeSpan.FromSeconds(1);
            o.MaxCheckoutDuration = TimeSpan.FromSeconds(3);
        }, WithPassword);
        await using var leaked = await pool.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(1));
        pool.Time.Advance(TimeSpan.FromSeconds(2));
        var e = Assert.ThrowsExactly<CovetConnectionReclaimedException>(() => leaked.QueryScalar("SELECT 1"));

        AssertNoSecret(e.ToString(), "CovetConnectionReclaimedException");
        Assert.IsNotEmpty(pool.LogsWithId(4001));
        Assert.IsNotEmpty(pool.LogsWithId(4003));
        AssertNoSecretInLogs(pool.Logs);
    }

    [TestMethod]
    public void FactoryPools_NamesAndLogs_NeverContainPassword()
    {
        var (logs, loggerFactory) = TestPool.CreateLogging();
        using var _ = loggerFactory;
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(), new CovetPoolOptions { TimeProvider = new FakeTimeProvider(), LoggerFactory = loggerFactory });
        using (var connection = factory.CreateConnection())
        {
            connection.ConnectionString = WithPassword + ";Covet.MaxPoolSize=2";
            connection.Open();
            CovetDbConnection.ClearPool((CovetDbConnection)connection);
        }

        foreach (var stats in factory.GetStatistics())
            AssertNoSecret(stats.PoolName, "a factory pool's name");
        AssertNoSecretInLogs(logs);
    }
}
