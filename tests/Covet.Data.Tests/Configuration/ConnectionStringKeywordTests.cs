using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace Covet.Data.Tests.Configuration;

[TestClass]
public sealed class ConnectionStringKeywordTests
{
    /// <summary>One sample value per keyword, and how to recognise it was applied (each differs from the default).</summary>
    private static readonly Dictionary<string, (string Value, Func<CovetPoolOptions, bool> Applied)> Samples = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Covet.MinPoolSize"] = ("2", o => o.MinPoolSize == 2),
        ["Covet.MaxPoolSize"] = ("7", o => o.MaxPoolSize == 7),
        ["Covet.AcquireTimeout"] = ("2.5", o => o.AcquireTimeout == TimeSpan.FromSeconds(2.5)),
        ["Covet.IdleTimeout"] = ("45", o => o.IdleTimeout == TimeSpan.FromSeconds(45)),
        ["Covet.MaxLifetime"] = ("0", o => o.MaxLifetime == TimeSpan.Zero),
        ["Covet.DefaultCommandTimeout"] = ("15", o => o.DefaultCommandTimeout == TimeSpan.FromSeconds(15)),
        ["Covet.PrePing"] = ("false", o => !o.PrePing),
        ["Covet.AliveBypassWindow"] = ("0.25", o => o.AliveBypassWindow == TimeSpan.FromMilliseconds(250)),
        ["Covet.ValidationTimeout"] = ("3", o => o.ValidationTimeout == TimeSpan.FromSeconds(3)),
        ["Covet.HealthQuery"] = ("SELECT 7", o => o.HealthQuery == "SELECT 7"),
        ["Covet.HealthCheckInterval"] = ("0", o => o.HealthCheckInterval == TimeSpan.Zero),
        ["Covet.ResetSessionOnReturn"] = ("off", o => !o.ResetSessionOnReturn),
        ["Covet.ResetQuery"] = ("RESET ALL", o => o.ResetQuery == "RESET ALL"),
        ["Covet.LeakDetectionThreshold"] = ("12", o => o.LeakDetectionThreshold == TimeSpan.FromSeconds(12)),
        ["Covet.LeakStackTraces"] = ("always", o => o.LeakStackTraces == CovetLeakStackTraces.Always),
        ["Covet.MaxCheckoutDuration"] = ("120", o => o.MaxCheckoutDuration == TimeSpan.FromSeconds(120)),
        ["Covet.MaintenanceInterval"] = ("0.5", o => o.MaintenanceInterval == TimeSpan.FromMilliseconds(500)),
        ["Covet.CircuitBreakerFailureThreshold"] = ("0", o => o.CircuitBreakerFailureThreshold == 0),
        ["Covet.CircuitBreakerBreakDuration"] = ("3", o => o.CircuitBreakerBreakDuration == TimeSpan.FromSeconds(3)),
        ["Covet.AutoScale"] = ("false", o => !o.AutoScale),
        ["Covet.ScaleUpUtilization"] = ("0.9", o => o.ScaleUpUtilization == 0.9),
        ["Covet.ScaleDownUtilization"] = ("0.3", o => o.ScaleDownUtilization == 0.3),
        ["Covet.ScaleStep"] = ("0.5", o => o.ScaleStep == 0.5),
        ["Covet.ScaleInterval"] = ("10", o => o.ScaleInterval == TimeSpan.FromSeconds(10)),
        ["Covet.PoolName"] = ("orders", o => o.PoolName == "orders"),
    };

    private static IEnumerable<object[]> AllKeywords => CovetConnectionStringKeywords.All.Select(k => new object[] { k });

    [TestMethod]
    public void All_ListsExactlyTheKeywordsThisSuiteCovers()
    {
        CollectionAssert.AreEquivalent(Samples.Keys.ToList(), CovetConnectionStringKeywords.All.ToList(),
            "A Covet keyword was added or removed: give it a sample in Samples so it is tested.");
    }

    [TestMethod]
    [DynamicData(nameof(AllKeywords))]
    public void Split_EachKeyword_IsAppliedAndRemovedFromProviderString(string keyword)
    {
        var (value, applied) = Samples[keyword];
        var (provider, options) = CovetConnectionStringKeywords.Split($"Database=covet_test;{keyword}={value};Timeout=5", new CovetPoolOptions());

        Assert.IsTrue(applied(options), $"{keyword}={value} was not applied");
        Assert.DoesNotContain("Covet.", provider, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("covet_test", provider);
        Assert.Contains("timeout", provider, StringComparison.OrdinalIgnoreCase);
    }

    [TestMethod]
    public void Split_KeywordsAreCaseInsensitive()
    {
        var (provider, options) = CovetConnectionStringKeywords.Split("Database=x;covet.maxpoolsize=3;COVET.PREPING=No", new CovetPoolOptions());

        Assert.AreEqual(3, options.MaxPoolSize);
        Assert.IsFalse(options.PrePing);
        Assert.DoesNotContain("covet.", provider, StringComparison.OrdinalIgnoreCase);
    }

    [TestMethod]
    public void Split_WithoutCovetKeywords_ReturnsStringUnchanged()
    {
        const string original = "Database=x; Timeout = 5 ;Application Name=app";
        var (provider, _) = CovetConnectionStringKeywords.Split(original, new CovetPoolOptions());
        Assert.AreEqual(original, provider);
    }

    [TestMethod]
    public void Split_DoesNotChangeTheDefaultsObject()
    {
        var defaults = new CovetPoolOptions { MaxPoolSize = 11 };
        var (_, options) = CovetConnectionStringKeywords.Split("Database=x;Covet.MaxPoolSize=3", defaults);
        Assert.AreEqual(3, options.MaxPoolSize);
        Assert.AreEqual(11, defaults.MaxPoolSize);
    }

    [TestMethod]
    public void Open_WithEveryKeyword_ProviderNeverSeesCovetKeywords()
    {
        var server = new FakeServer();
        var keywords = string.Join(";", Samples.Select(s => $"{s.Key}={s.Value.Value}"));
        var time = new FakeTimeProvider();
        using var source = CovetDataSource.Create(new FakeDbProviderFactory(server), $"Database=covet_test;{keywords};Timeout=5", new CovetPoolOptions { TimeProvider = time });

        foreach (var (keyword, sample) in Samples)
            Assert.IsTrue(sample.Applied(source.Options), $"{keyword} was not applied to the data source's options");

        using var connection = source.CreateConnection();
        connection.Open();
        var physicals = server.Connections.Where(c => c.OpenCount > 0).ToList();
        Assert.IsNotEmpty(physicals);
        foreach (var physical in physicals)
        {
            Assert.IsNotNull(physical.OpenedWithConnectionString);
            Assert.DoesNotContain("Covet.", physical.OpenedWithConnectionString, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("covet_test", physical.OpenedWithConnectionString);
        }
        Assert.AreEqual("covet_test", connection.Database);
    }

    [TestMethod]
    public void Factory_ConnectionWithCovetKeywords_ProviderNeverSeesThem()
    {
        var server = new FakeServer();
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(server), new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });
        using var connection = factory.CreateConnection();
        connection.ConnectionString = "Database=covet_test;Covet.MaxPoolSize=3;Covet.PoolName=factory-pool";
        connection.Open();

        var physical = server.Connections.Single(c => c.OpenCount > 0);
        Assert.DoesNotContain("Covet.", physical.OpenedWithConnectionString!, StringComparison.OrdinalIgnoreCase);
        var stats = ((CovetDbConnection)connection).GetPoolStatistics();
        Assert.AreEqual(3, stats.MaxPoolSize);
        Assert.AreEqual("factory-pool", stats.PoolName);
    }

    [TestMethod]
    public void Split_UnknownKeyword_ThrowsNamingIt()
    {
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetConnectionStringKeywords.Split("Database=x;Covet.MaxPoolSise=5", new CovetPoolOptions()));

        // The keyword is named as the connection-string parser normalised it (lower case).
        Assert.AreEqual("Covet.MaxPoolSise", e.Setting, ignoreCase: true);
        Assert.Contains("Covet.MaxPoolSise", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [TestMethod]
    public void Create_UnknownKeyword_ThrowsBeforeAnyConnectionIsMade()
    {
        var server = new FakeServer();
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetDataSource.Create(new FakeDbProviderFactory(server), "Database=x;Covet.Bogus=1", new CovetPoolOptions { TimeProvider = new FakeTimeProvider() }));
        Assert.Contains("Covet.Bogus", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.AreEqual(0, server.TotalOpened);
    }

    [TestMethod]
    [DataRow("Covet.MaxPoolSize", "ten")]
    [DataRow("Covet.MinPoolSize", "1.5")]
    [DataRow("Covet.CircuitBreakerFailureThreshold", "")]
    [DataRow("Covet.AcquireTimeout", "abc")]
    [DataRow("Covet.AcquireTimeout", "NaN")]
    [DataRow("Covet.IdleTimeout", "Infinity")]
    [DataRow("Covet.MaxLifetime", "10s")]
    [DataRow("Covet.PrePing", "maybe")]
    [DataRow("Covet.ResetSessionOnReturn", "2")]
    [DataRow("Covet.ScaleStep", "a fifth")]
    [DataRow("Covet.LeakStackTraces", "Sometimes")]
    [DataRow("Covet.LeakStackTraces", "7")]
    [DataRow("Covet.ScaleUpUtilization", "NaN")]
    public void Split_MalformedValue_ThrowsNamingTheKeyword(string keyword, string value)
    {
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetConnectionStringKeywords.Split($"Database=x;{keyword}='{value}'", new CovetPoolOptions()));

        Assert.AreEqual(keyword, e.Setting, ignoreCase: true);
        Assert.Contains(keyword, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [TestMethod]
    [DataRow("Covet.AcquireTimeout", "1e300")]
    [DataRow("Covet.MaxLifetime", "1e15")]
    public void Split_TimeTooLargeForTimeSpan_ThrowsConfigurationException(string keyword, string value)
    {
        // A number that parses but does not fit a TimeSpan is a malformed setting too, not an OverflowException.
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetConnectionStringKeywords.Split($"Database=x;{keyword}={value}", new CovetPoolOptions()));
        Assert.Contains(keyword, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [TestMethod]
    public void Split_MalformedConnectionString_ThrowsConfigurationException()
    {
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetConnectionStringKeywords.Split("Database=x;Covet.MaxPoolSize=3;Password='unterminated", new CovetPoolOptions()));
        Assert.AreEqual("ConnectionString", e.Setting);
    }

    [TestMethod]
    public void Create_MinPoolSizeAboveMax_Throws()
    {
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetDataSource.Create(new FakeDbProviderFactory(), "Database=x;Covet.MinPoolSize=5;Covet.MaxPoolSize=2", new CovetPoolOptions { TimeProvider = new FakeTimeProvider() }));
        Assert.AreEqual(nameof(CovetPoolOptions.MinPoolSize), e.Setting);
        Assert.Contains("MaxPoolSize", e.Message);
    }

    [TestMethod]
    public void Validate_MinPoolSizeAboveMax_Throws()
    {
        var options = new CovetPoolOptions { MinPoolSize = 3, MaxPoolSize = 2 };
        var e = Assert.ThrowsExactly<CovetConfigurationException>(options.Validate);
        Assert.AreEqual(nameof(CovetPoolOptions.MinPoolSize), e.Setting);
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(-1)]
    public void Create_MaxPoolSizeBelowOne_Throws(int max)
    {
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetDataSource.Create(new FakeDbProviderFactory(), $"Database=x;Covet.MaxPoolSize={max}", new CovetPoolOptions { TimeProvider = new FakeTimeProvider() }));
        Assert.AreEqual(nameof(CovetPoolOptions.MaxPoolSize), e.Setting);
    }

    [TestMethod]
    public void Factory_InvalidDefaultOptions_ThrowsOnConstruction()
    {
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            new CovetProviderFactory(new FakeDbProviderFactory(), new CovetPoolOptions { MaxPoolSize = 0 }));
        Assert.AreEqual(nameof(CovetPoolOptions.MaxPoolSize), e.Setting);
    }

    [TestMethod]
    [DataRow("AcquireTimeout", "0")]
    [DataRow("AcquireTimeout", "-5")]
    [DataRow("ValidationTimeout", "0")]
    [DataRow("DefaultCommandTimeout", "0")]
    [DataRow("MaintenanceInterval", "0")]
    [DataRow("MaintenanceInterval", "-1")]
    [DataRow("IdleTimeout", "-1")]
    [DataRow("MaxLifetime", "-1")]
    [DataRow("AliveBypassWindow", "-0.5")]
    [DataRow("HealthCheckInterval", "-1")]
    [DataRow("LeakDetectionThreshold", "-1")]
    [DataRow("MaxCheckoutDuration", "-1")]
    [DataRow("CircuitBreakerBreakDuration", "-1")]
    [DataRow("CircuitBreakerFailureThreshold", "-1")]
    [DataRow("MinPoolSize", "-1")]
    [DataRow("ScaleStep", "0")]
    [DataRow("ScaleUpUtilization", "1.5")]
    [DataRow("ScaleDownUtilization", "-0.1")]
    [DataRow("ScaleInterval", "-1")]
    public void Create_OutOfRangeSetting_ThrowsNamingIt(string setting, string value)
    {
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            CovetDataSource.Create(new FakeDbProviderFactory(), $"Database=x;Covet.{setting}={value}", new CovetPoolOptions { TimeProvider = new FakeTimeProvider() }));
        Assert.AreEqual(setting, e.Setting);
        Assert.Contains(setting, e.Message);
    }

    [TestMethod]
    [DataRow("IdleTimeout")]
    [DataRow("MaxLifetime")]
    [DataRow("HealthCheckInterval")]
    [DataRow("LeakDetectionThreshold")]
    [DataRow("MaxCheckoutDuration")]
    [DataRow("AliveBypassWindow")]
    public void Create_ZeroForOptionalFeature_TurnsItOffWithoutError(string setting)
    {
        using var source = CovetDataSource.Create(new FakeDbProviderFactory(), $"Database=x;Covet.{setting}=0", new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });
        var value = (TimeSpan)typeof(CovetPoolOptions).GetProperty(setting)!.GetValue(source.Options)!;
        Assert.AreEqual(TimeSpan.Zero, value);
    }

    [TestMethod]
    public void Factory_StringsDifferingOnlyInCovetKeywords_GetAPoolEach_WithTheirOwnSettings()
    {
        // As the providers key pools by the whole string: the second string's options are honoured, not the first one's.
        var server = new FakeServer();
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(server), new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });
        using (var a = factory.CreateConnection())
        {
            a.ConnectionString = "Database=shared;Covet.MaxPoolSize=2";
            a.Open();
        }
        using var b = (CovetDbConnection)factory.CreateConnection();
        b.ConnectionString = "Database=shared;Covet.MaxPoolSize=10";
        b.Open();

        Assert.AreEqual(2, server.TotalOpened, "each string has its own pool, so the second opens its own connection");
        Assert.HasCount(2, factory.GetStatistics());
        Assert.AreEqual(10, b.GetPoolStatistics().MaxPoolSize);
    }

    [TestMethod]
    public void Factory_InvalidCovetValue_IsRejectedEveryTime_EvenAfterAValidStringForTheSameProviderString()
    {
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(), new CovetPoolOptions { TimeProvider = new FakeTimeProvider() });
        using (var a = factory.CreateConnection())
        {
            a.ConnectionString = "Database=shared;Covet.MaxPoolSize=2";
            a.Open();
        }
        for (var i = 0; i < 2; i++)
        {
            using var b = factory.CreateConnection();
            var e = Assert.ThrowsExactly<CovetConfigurationException>(() => b.ConnectionString = "Database=shared;Covet.MaxPoolSize=0");
            StringAssert.Contains(e.Message, "MaxPoolSize");
        }
    }

    [TestMethod]
    public void Factory_OptionsPassedIn_AreCopied()
    {
        var options = new CovetPoolOptions { MaxPoolSize = 9, TimeProvider = new FakeTimeProvider() };
        var factory = new CovetProviderFactory(new FakeDbProviderFactory(), options);
        options.MaxPoolSize = 1;
        Assert.AreEqual(9, factory.Options.MaxPoolSize);
    }

    [TestMethod]
    public void DataSource_OptionsFromConnectionString_OverrideOptionsObject()
    {
        using var pool = TestPool.Create(o => { o.MaxPoolSize = 50; o.MinPoolSize = 0; }, "Database=x;Covet.MaxPoolSize=3");
        Assert.AreEqual(3, pool.Source.Options.MaxPoolSize);
        Assert.AreEqual(3, pool.Stats.MaxPoolSize);
    }
}
