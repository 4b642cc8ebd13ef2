using Covet.Data.Tests.Fakes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Covet.Data.Tests.TestSupport;

/// <summary>
/// One test's world: its own fake server, fake clock (shared by the server and the pool), log collector and data source.
/// Tests run in parallel, so nothing here is static.
/// </summary>
internal sealed class TestPool : IDisposable, IAsyncDisposable
{
    public const string DefaultConnectionString = "Data Source=fake;Database=covet_test";

    private readonly ILoggerFactory _loggerFactory;

    private TestPool(FakeServer server, FakeTimeProvider time, FakeLogCollector logs, ILoggerFactory loggerFactory, CovetDataSource source)
    {
        Server = server;
        Time = time;
        Logs = logs;
        _loggerFactory = loggerFactory;
        Source = source;
    }

    public FakeServer Server { get; }
    public FakeTimeProvider Time { get; }
    public FakeLogCollector Logs { get; }
    public CovetDataSource Source { get; }
    public FakeDbProviderFactory ProviderFactory => (FakeDbProviderFactory)Source.Factory.Inner;

    public CovetPoolStatistics Stats => Source.GetStatistics();

    /// <summary>
    /// Builds a pool over a fresh fake server: fake clock, collected logs, and the options given by <paramref name="configure"/>
    /// on top of Covet's defaults, except that demand-driven sizing is off (it opens and closes connections on maintenance
    /// ticks, which would blur what the other features do); the auto-scaling tests turn it back on.
    /// </summary>
    public static TestPool Create(Action<CovetPoolOptions>? configure = null, string connectionString = DefaultConnectionString, Action<FakeServer>? script = null)
    {
        var time = new FakeTimeProvider();
        var server = new FakeServer { TimeProvider = time };
        script?.Invoke(server);
        var (logs, loggerFactory) = CreateLogging();
        var options = new CovetPoolOptions { TimeProvider = time, LoggerFactory = loggerFactory, AutoScale = false };
        configure?.Invoke(options);
        var source = CovetDataSource.Create(new FakeDbProviderFactory(server), connectionString, options);
        return new TestPool(server, time, logs, loggerFactory, source);
    }

    public static (FakeLogCollector Logs, ILoggerFactory Factory) CreateLogging()
    {
        var logs = new FakeLogCollector();
        var factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(new FakeLoggerProvider(logs)));
        return (logs, factory);
    }

    public CovetDbConnection Open()
    {
        var connection = Source.CreateConnection();
        connection.Open();
        return connection;
    }

    public async Task<CovetDbConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        var connection = Source.CreateConnection();
        await connection.OpenAsync(cancellationToken).Bounded();
        return connection;
    }

    /// <summary>Records logged with <paramref name="eventId"/>.</summary>
    public IReadOnlyList<FakeLogRecord> LogsWithId(int eventId) => Logs.GetSnapshot().Where(r => r.Id.Id == eventId).ToList();

    /// <summary>Every physical connection the pool opened (the pool's unopened template connection excluded).</summary>
    public FakeDbConnection[] OpenedPhysicals => Server.Connections.Where(c => c.OpenCount > 0).ToArray();

    /// <summary>Number of provider connection objects created: the pool's template plus one per physical open attempt.</summary>
    public int ProviderConnectionObjects => Server.Connections.Length;

    /// <summary>Waits until no background work (reset, warm-up) holds a slot: every slot is idle.</summary>
    public Task UntilQuiescentAsync() =>
        Poll.UntilAsync(() => Stats is { InUse: 0, Waiting: 0 }, "every slot idle (no background reset or open in flight)");

    public void Dispose()
    {
        Source.Dispose();
        _loggerFactory.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await Source.DisposeAsync();
        _loggerFactory.Dispose();
    }
}
