using System.Data;
using System.Runtime.CompilerServices;
using Covet.Data.Tests.Fakes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Covet.Data.Tests.Configuration;

/// <summary>
/// <c>AddCovetDataSource(..., configuration)</c> follows reloads of its options. Every reload here is triggered by the test
/// itself (<see cref="IConfigurationRoot.Reload"/>), so nothing waits for a file watcher.
/// </summary>
[TestClass]
public sealed class ConfigurationReloadTests
{
    private const int Reconfigured = 7004;
    private const int ReloadIgnored = 8001;

    private sealed class App : IAsyncDisposable
    {
        public App(IConfigurationRoot configuration, Action<IServiceCollection> register)
        {
            Configuration = configuration;
            var services = new ServiceCollection();
            services.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(new FakeLoggerProvider(Logs)));
            register(services);
            Services = services.BuildServiceProvider();
        }

        public IConfigurationRoot Configuration { get; }
        public FakeLogCollector Logs { get; } = new();
        public ServiceProvider Services { get; }
        public CovetDataSource DataSource => Services.GetRequiredService<CovetDataSource>();

        public IReadOnlyList<FakeLogRecord> Events(int id) => Logs.GetSnapshot().Where(r => r.Id.Id == id).ToList();

        /// <summary>Sets the values (null removes one) and reloads the configuration, firing its change token.</summary>
        public void Reload(params (string Key, string? Value)[] values)
        {
            foreach (var (key, value) in values)
                Configuration[key] = value;
            Configuration.Reload();
        }

        public ValueTask DisposeAsync() => Services.DisposeAsync();
    }

    private static IConfigurationRoot Memory(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    // Each app's pool gets a name of its own (the name comes from the connection string): tests run in parallel, and
    // CovetPools.Reconfigure(name) must not reach another test's pool.
    private static App FakeApp(IConfigurationRoot configuration, string? connectionString = null, Action<CovetPoolOptions>? configure = null) =>
        new(configuration, s => s.AddCovetDataSource(new FakeDbProviderFactory(), connectionString ?? $"Database=reload-{Guid.NewGuid():N}",
            configuration.GetSection("Covet"), configure));

    [TestMethod]
    public async Task Reload_ChangesTheRunningPoolsOptions_AndThePoolLogsOldAndNewValuesThroughTheAppsLogger()
    {
        await using var app = FakeApp(Memory(("Covet:MaxPoolSize", "10"), ("Covet:AcquireTimeout", "00:00:30"), ("Covet:AutoScale", "false")));
        var source = app.DataSource;
        await using (var c = await source.OpenConnectionAsync())
            Assert.AreEqual(ConnectionState.Open, c.State);

        app.Reload(("Covet:MaxPoolSize", "20"), ("Covet:AcquireTimeout", "00:00:05"));

        Assert.AreEqual(20, source.Options.MaxPoolSize);
        Assert.AreEqual(TimeSpan.FromSeconds(5), source.Options.AcquireTimeout);
        Assert.AreEqual(20, source.GetStatistics().MaxPoolSize);
        var line = app.Events(Reconfigured).Single();
        Assert.AreEqual(LogLevel.Information, line.Level);
        StringAssert.Contains(line.Message, "MaxPoolSize 10 → 20");
        StringAssert.Contains(line.Message, "AcquireTimeout 00:00:30 → 00:00:05");
        StringAssert.Contains(line.Message, source.PoolName);
        Assert.AreEqual(0, app.Events(ReloadIgnored).Count);

        // A reload that changes nothing of this pool (another key of the same file) does nothing, and logs nothing.
        app.Reload(("Logging:LogLevel:Default", "Debug"));
        Assert.AreEqual(1, app.Events(Reconfigured).Count);
        Assert.AreEqual(20, source.Options.MaxPoolSize);
    }

    [TestMethod]
    public async Task InvalidReload_IsLoggedNamingTheSettingAndIgnored_ThePoolKeepsItsOptionsAndWorks()
    {
        await using var app = FakeApp(Memory(("Covet:MinPoolSize", "0"), ("Covet:MaxPoolSize", "4"), ("Covet:AutoScale", "false")));
        var source = app.DataSource;

        // A value out of range: the validator refuses it (IOptionsMonitor.Get would throw).
        ReloadIgnoringTheMonitorsOwnError(app, ("Covet:MinPoolSize", "9"));
        var warning = app.Events(ReloadIgnored).Single();
        Assert.AreEqual(LogLevel.Warning, warning.Level);
        StringAssert.Contains(warning.Message, "MinPoolSize");
        StringAssert.Contains(warning.Message, source.PoolName);
        Assert.AreEqual(0, source.Options.MinPoolSize);
        Assert.AreEqual(4, source.Options.MaxPoolSize);

        // A value the binder cannot convert.
        ReloadIgnoringTheMonitorsOwnError(app, ("Covet:MinPoolSize", "0"), ("Covet:MaxPoolSize", "lots"));
        Assert.AreEqual(2, app.Events(ReloadIgnored).Count);
        StringAssert.Contains(app.Events(ReloadIgnored)[1].Message, "MaxPoolSize");
        Assert.AreEqual(4, source.Options.MaxPoolSize);

        Assert.AreEqual(0, app.Events(Reconfigured).Count, "nothing was applied");
        await using (var c = await source.OpenConnectionAsync())
            Assert.AreEqual(ConnectionState.Open, c.State, "the pool still works");

        // The file fixed: the reload applies.
        app.Reload(("Covet:MaxPoolSize", "6"));
        Assert.AreEqual(6, source.Options.MaxPoolSize);
        Assert.AreEqual(1, app.Events(Reconfigured).Count);
    }

    [TestMethod]
    public async Task ReloadChangingASettingThatCannotChangeLive_IsRejectedNamingIt_AndALaterFixedReloadAppliesEverythingItChanged()
    {
        await using var app = FakeApp(Memory(("Covet:PoolName", "orders"), ("Covet:MaxPoolSize", "4"), ("Covet:AutoScale", "false")));
        var source = app.DataSource;

        app.Reload(("Covet:PoolName", "orders-renamed"), ("Covet:MinPoolSize", "1"));
        var warning = app.Events(ReloadIgnored).Single();
        StringAssert.Contains(warning.Message, "PoolName cannot change on a running pool");
        Assert.AreEqual("orders", source.PoolName);
        Assert.AreEqual(0, source.Options.MinPoolSize, "rejected whole: MinPoolSize was not applied either");

        app.Reload(("Covet:ResetSessionOnReturn", "false"));
        Assert.AreEqual(2, app.Events(ReloadIgnored).Count);
        StringAssert.Contains(app.Events(ReloadIgnored)[1].Message, "ResetSessionOnReturn cannot change on a running pool");   // (the first such setting is named)

        // The name and the reset put back: the MinPoolSize change made meanwhile is applied.
        app.Reload(("Covet:PoolName", "orders"), ("Covet:ResetSessionOnReturn", "true"));
        Assert.AreEqual(2, app.Events(ReloadIgnored).Count, string.Join("\n", app.Events(ReloadIgnored).Select(r => r.Message)));
        Assert.AreEqual(1, source.Options.MinPoolSize);
        Assert.AreEqual("orders", source.PoolName);
        StringAssert.Contains(app.Events(Reconfigured).Single().Message, "MinPoolSize 0 → 1");
    }

    [TestMethod]
    public async Task Reload_KeepsTheConnectionStringsCovetKeywordsWinning_AndTheConfigureDelegateRunsAgain()
    {
        var configureRuns = 0;
        await using var app = FakeApp(Memory(("Covet:MaxPoolSize", "10"), ("Covet:LeakDetectionThreshold", "00:01:00")),
            $"Database=reload-{Guid.NewGuid():N};Covet.MaxPoolSize=3", o =>
            {
                configureRuns++;
                o.AutoScale = false;   // set in code: a reload keeps it (the delegate runs again)
            });
        var source = app.DataSource;
        Assert.AreEqual(3, source.Options.MaxPoolSize, "the keyword wins at creation");
        var runsAtStart = configureRuns;

        app.Reload(("Covet:MaxPoolSize", "50"), ("Covet:LeakDetectionThreshold", "00:00:10"));

        Assert.AreEqual(3, source.Options.MaxPoolSize, "the keyword keeps winning");
        Assert.AreEqual(TimeSpan.FromSeconds(10), source.Options.LeakDetectionThreshold);
        Assert.IsFalse(source.Options.AutoScale);
        Assert.IsTrue(configureRuns > runsAtStart, "the configure delegate ran for the reload");
        StringAssert.DoesNotMatch(app.Events(Reconfigured).Single().Message, new System.Text.RegularExpressions.Regex("MaxPoolSize"));
    }

    [TestMethod]
    public async Task Reload_AppliesOnlyWhatItChanged_AResizeMadeMeanwhileStays()
    {
        await using var app = FakeApp(Memory(("Covet:MaxPoolSize", "10"), ("Covet:AcquireTimeout", "00:00:30"), ("Covet:AutoScale", "false")));
        var source = app.DataSource;
        Assert.AreEqual(1, CovetPools.Reconfigure(source.PoolName, o => o.MaxPoolSize = 40));   // as the dashboard's resize does

        app.Reload(("Covet:AcquireTimeout", "00:00:07"));
        Assert.AreEqual(40, source.Options.MaxPoolSize, "the reload did not touch MaxPoolSize");
        Assert.AreEqual(TimeSpan.FromSeconds(7), source.Options.AcquireTimeout);

        app.Reload(("Covet:MaxPoolSize", "12"));
        Assert.AreEqual(12, source.Options.MaxPoolSize, "a setting the reload changes wins (the last change wins)");
    }

    [TestMethod]
    public async Task KeyedRegistrations_EachFollowsItsOwnSection()
    {
        var configuration = Memory(("Orders:MaxPoolSize", "2"), ("Billing:MaxPoolSize", "4"), ("Orders:AutoScale", "false"), ("Billing:AutoScale", "false"));
        await using var app = new App(configuration, s =>
        {
            s.AddCovetDataSource(new FakeDbProviderFactory(), "Database=orders", configuration.GetSection("Orders"), o => o.PoolName = "orders", serviceKey: "orders");
            s.AddCovetDataSource(new FakeDbProviderFactory(), "Database=billing", configuration.GetSection("Billing"), o => o.PoolName = "billing", serviceKey: "billing");
        });
        var orders = app.Services.GetRequiredKeyedService<CovetDataSource>("orders");
        var billing = app.Services.GetRequiredKeyedService<CovetDataSource>("billing");

        app.Reload(("Orders:MaxPoolSize", "8"));
        Assert.AreEqual(8, orders.Options.MaxPoolSize);
        Assert.AreEqual(4, billing.Options.MaxPoolSize);

        ReloadIgnoringTheMonitorsOwnError(app, ("Billing:MaxPoolSize", "0"));   // invalid for billing only
        Assert.AreEqual(4, billing.Options.MaxPoolSize);
        Assert.AreEqual(8, orders.Options.MaxPoolSize);
        StringAssert.Contains(app.Events(ReloadIgnored).Single().Message, "billing");
        Assert.AreEqual("orders", app.Events(Reconfigured).Single().Properties("PoolName"));
    }

    [TestMethod]
    public async Task JsonFileReload_OnARealSqlitePool_RaisedMaximumServesTheWaiter()
    {
        var dir = Directory.CreateTempSubdirectory("covet-reload-");
        var json = Path.Combine(dir.FullName, "appsettings.json");
        var database = Path.Combine(dir.FullName, "reload.db");
        await File.WriteAllTextAsync(json, """{ "Covet": { "MaxPoolSize": 2, "AcquireTimeout": "00:00:30", "AutoScale": false } }""");
        try
        {
            // reloadOnChange off: the test reloads by hand, so no file watcher's timing is involved.
            var configuration = new ConfigurationBuilder().AddJsonFile(json, optional: false, reloadOnChange: false).Build();
            await using var app = new App(configuration, s => s.AddCovetDataSource(SqliteFactory.Instance, $"Data Source={database}", configuration.GetSection("Covet")));
            var source = app.DataSource;
            await using var first = await source.OpenConnectionAsync();
            await using var second = await source.OpenConnectionAsync();
            var waiter = source.OpenConnectionAsync().AsTask();
            for (var i = 0; source.GetStatistics().Waiting == 0; i++)
            {
                Assert.IsTrue(i < 2000, "the third open never queued");
                await Task.Delay(5);
            }
            Assert.IsFalse(waiter.IsCompleted);

            await File.WriteAllTextAsync(json, """{ "Covet": { "MaxPoolSize": 3, "AcquireTimeout": "00:00:30", "AutoScale": false } }""");
            configuration.Reload();

            await using var third = await waiter.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.AreEqual(ConnectionState.Open, third.State);
            using (var command = third.CreateCommand())
            {
                command.CommandText = "select 41 + 1";
                Assert.AreEqual(42L, await command.ExecuteScalarAsync());
            }
            Assert.AreEqual(3, source.GetStatistics().MaxPoolSize);
            Assert.AreEqual(3, source.GetStatistics().InUse);
            StringAssert.Contains(app.Events(Reconfigured).Single().Message, "MaxPoolSize 2 → 3");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            dir.Delete(recursive: true);
        }
    }

    [TestMethod]
    public async Task DisposingTheServiceProvider_Unsubscribes_NoReloadReachesTheDisposedPool_AndNothingIsLeaked()
    {
        var configuration = Memory(("Covet:MaxPoolSize", "5"), ("Covet:AutoScale", "false"));
        var (dataSource, logs) = await CreateUseAndDispose(configuration);
        var logged = logs.GetSnapshot().Count(r => r.Id.Id is Reconfigured or ReloadIgnored);
        Assert.AreEqual(1, logged, "the reload while alive");

        // Subscribed still, this reload would reach a disposed pool (ObjectDisposedException thrown out of Reload) or log.
        configuration["Covet:MaxPoolSize"] = "9";
        configuration.Reload();
        configuration["Covet:MinPoolSize"] = "20";
        ReloadIgnoringTheMonitorsOwnError(configuration);
        Assert.AreEqual(logged, logs.GetSnapshot().Count(r => r.Id.Id is Reconfigured or ReloadIgnored), "nothing logged after disposal");

        // The configuration outlives the provider; it must not keep the data source alive through a change-token callback.
        for (var i = 0; i < 5 && dataSource.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.IsFalse(dataSource.IsAlive, "the disposed data source is still referenced (a reload subscription leaked)");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<(WeakReference DataSource, FakeLogCollector Logs)> CreateUseAndDispose(IConfigurationRoot configuration)
    {
        var app = FakeApp(configuration);
        var source = app.DataSource;
        app.Reload(("Covet:MaxPoolSize", "6"));
        Assert.AreEqual(6, source.Options.MaxPoolSize, "subscribed while alive");
        await app.DisposeAsync();
        Assert.ThrowsExactly<ObjectDisposedException>(() => source.CreateConnection());
        return (new WeakReference(source), app.Logs);
    }

    // A validator failing on reload makes IOptionsMonitor's own change callback throw (Microsoft.Extensions.Options calls Get
    // before its listeners): ConfigurationRoot.Reload() rethrows that to its caller. The pool's subscription is not the monitor's.
    private static void ReloadIgnoringTheMonitorsOwnError(App app, params (string Key, string? Value)[] values)
    {
        foreach (var (key, value) in values)
            app.Configuration[key] = value;
        ReloadIgnoringTheMonitorsOwnError(app.Configuration);
    }

    private static void ReloadIgnoringTheMonitorsOwnError(IConfigurationRoot configuration)
    {
        try
        {
            configuration.Reload();
        }
        catch (AggregateException e) when (e.Flatten().InnerExceptions.All(x => x is Microsoft.Extensions.Options.OptionsValidationException or InvalidOperationException))
        {
        }
    }
}

internal static class FakeLogRecordProperties
{
    public static string? Properties(this FakeLogRecord record, string name) =>
        record.StructuredState?.FirstOrDefault(p => p.Key == name).Value;
}
