using System.Data.Common;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests.FaultInjection;

/// <summary>One of the two test servers, as the fault-injection scenarios need it: reached through a proxy port.</summary>
internal sealed class FaultDb
{
    private readonly Func<int, string, string> _connectionString;

    private FaultDb(string name, DbProviderFactory factory, Type providerException, string environmentVariable,
        Func<string, int> serverPort, Func<int, string, string> connectionString, Func<double, string> sleepSql)
    {
        Name = name;
        Factory = factory;
        ProviderException = providerException;
        EnvironmentVariable = environmentVariable;
        ServerPort = serverPort(BaseConnectionString);
        _connectionString = connectionString;
        SleepSql = sleepSql;
    }

    public static FaultDb Postgres { get; } = new(
        "PostgreSQL", NpgsqlFactory.Instance, typeof(NpgsqlException), "COVET_TEST_PG",
        cs => new NpgsqlConnectionStringBuilder(cs).Port,
        (port, label) => new NpgsqlConnectionStringBuilder(Require("COVET_TEST_PG"))
        {
            Port = port,
            ApplicationName = $"cv-fi-{(label.Length > 20 ? label[..20] : label)}-{Guid.NewGuid():N}", // ≤ 63 bytes
        }.ConnectionString,
        seconds => $"select pg_sleep({seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)})");

    public static FaultDb MariaDb { get; } = new(
        "MariaDB", MySqlConnectorFactory.Instance, typeof(MySqlException), "COVET_TEST_MYSQL",
        cs => (int)new MySqlConnectionStringBuilder(cs).Port,
        (port, _) => new MySqlConnectionStringBuilder(Require("COVET_TEST_MYSQL")) { Port = (uint)port }.ConnectionString,
        seconds => $"select sleep({seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)})");

    public string Name { get; }
    public DbProviderFactory Factory { get; }

    /// <summary>The base type of the provider's errors (NpgsqlException, MySqlException).</summary>
    public Type ProviderException { get; }

    /// <summary>
    /// An error as the driver itself raises it: its exception type, or the socket / I/O error it lets through as is
    /// (plain MySqlConnector throws a bare SocketException when it writes to a reset connection). Never a Covet type.
    /// </summary>
    public bool IsProviderError(Exception? error) =>
        error is not null and not CovetException && (ProviderException.IsInstanceOfType(error) || error is System.Net.Sockets.SocketException or IOException);

    public string EnvironmentVariable { get; }
    public string BaseConnectionString => Require(EnvironmentVariable);
    public int ServerPort { get; }
    public Func<double, string> SleepSql { get; }

    /// <summary>The test server's connection string pointed at <paramref name="port"/> on 127.0.0.1 (a proxy).</summary>
    public string ConnectionStringVia(int port, string label) => _connectionString(port, label);

    public override string ToString() => Name;

    private static string Require(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{name} is not set: run `scripts/servers.sh start && eval \"$(scripts/servers.sh env)\"` first.");
}

/// <summary>
/// A proxy in front of one server, a Covet data source through it, and the pool's log events. Every test builds its
/// own; disposing closes the pool first, then the proxy.
/// </summary>
internal sealed class FaultRig : IAsyncDisposable
{
    private FaultRig(FaultDb db, LoopbackFaultProxy proxy, CovetDataSource dataSource, FakeLogCollector logs, ILoggerFactory loggerFactory)
    {
        Db = db;
        Proxy = proxy;
        DataSource = dataSource;
        Logs = logs;
        _loggerFactory = loggerFactory;
    }

    private readonly ILoggerFactory _loggerFactory;

    public FaultDb Db { get; }
    public LoopbackFaultProxy Proxy { get; }
    public CovetDataSource DataSource { get; }
    public FakeLogCollector Logs { get; }
    public CovetPoolStatistics Stats => DataSource.GetStatistics();

    /// <summary>
    /// Small, fast settings for fault tests (breaker break 0.5 s, maintenance every 0.2 s, acquire timeout 5 s);
    /// <paramref name="configure"/> adjusts them. <paramref name="network"/> sets up the proxy before the pool exists
    /// (a pool with a minimum starts connecting at once).
    /// </summary>
    public static FaultRig Create(FaultDb db, string label, Action<CovetPoolOptions>? configure = null, string? extraConnectionString = null,
        Action<LoopbackFaultProxy>? network = null)
    {
        var proxy = new LoopbackFaultProxy(db.ServerPort);
        network?.Invoke(proxy);
        var logs = new FakeLogCollector();
        var loggerFactory = new LoggerFactory([new FakeLoggerProvider(logs)]);
        var options = new CovetPoolOptions
        {
            MaxPoolSize = 10,
            AcquireTimeout = TimeSpan.FromSeconds(5),
            MaintenanceInterval = TimeSpan.FromMilliseconds(200),
            CircuitBreakerBreakDuration = TimeSpan.FromMilliseconds(500),
            PoolName = $"fi-{label}-{db.Name}",
            LoggerFactory = loggerFactory,
        };
        configure?.Invoke(options);
        var connectionString = db.ConnectionStringVia(proxy.Port, label) + (extraConnectionString is null ? "" : ";" + extraConnectionString);
        var dataSource = CovetDataSource.Create(db.Factory, connectionString, options);
        return new FaultRig(db, proxy, dataSource, logs, loggerFactory);
    }

    public async Task<CovetDbConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        var connection = DataSource.CreateConnection();
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Opens <paramref name="count"/> connections at once, runs a query on each and returns them: the pool then holds that many idle.</summary>
    public async Task WarmAsync(int count)
    {
        var connections = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => OpenAsync()));
        foreach (var connection in connections)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "select 1";
            await command.ExecuteScalarAsync();
        }
        foreach (var connection in connections)
            await connection.DisposeAsync();
        Assert.IsTrue(await Measure.UntilAsync(() => Stats is { Idle: var idle, InUse: 0 } && idle == count, TimeSpan.FromSeconds(5)),
            $"warm-up: {Measure.Describe(Stats)}");
    }

    /// <summary>Times (since <paramref name="since"/>) of the pool's log events with this id.</summary>
    public IReadOnlyList<TimeSpan> EventTimes(int eventId, DateTimeOffset since) =>
        Logs.GetSnapshot().Where(r => r.Id.Id == eventId).Select(r => r.Timestamp - since).Order().ToList();

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await Proxy.DisposeAsync();
        _loggerFactory.Dispose();
    }
}

/// <summary>Covet's log event ids the scenarios look for (see CovetLog).</summary>
internal static class CovetEvents
{
    public const int PrePingFailed = 3001;
    public const int HealthCheckFailed = 3002;
    public const int CircuitOpened = 6001;
    public const int CircuitClosed = 6003;
}

/// <summary>A call under test did not return within its guard time (it would have hung the test run).</summary>
internal sealed class HungException(string message) : Exception(message);

internal static class Measure
{
    /// <summary>
    /// Runs and times <paramref name="action"/>. A call still running after <paramref name="guard"/> (default 8 s) is
    /// reported as a <see cref="HungException"/> instead of hanging the test run; it is left behind (the test's rig
    /// disposal cuts its connections, which ends it).
    /// </summary>
    public static async Task<(T? Result, Exception? Error, TimeSpan Elapsed)> TimeAsync<T>(Func<Task<T>> action, TimeSpan? guard = null)
    {
        var clock = Stopwatch.StartNew();
        var bound = guard ?? TimeSpan.FromSeconds(8);
        Task<T>? task = null;
        try
        {
            task = action();
            var result = await task.WaitAsync(bound);
            return (result, null, clock.Elapsed);
        }
        catch (TimeoutException) when (task is { IsCompleted: false })
        {
            return (default, new HungException($"still running after {bound.TotalSeconds:F1} s"), clock.Elapsed);
        }
        catch (Exception e)
        {
            return (default, e, clock.Elapsed);
        }
    }

    /// <summary><paramref name="normal"/>, or more when COVET_FI_HANG_GUARD (seconds) asks to wait out hung calls.</summary>
    public static TimeSpan HangGuard(TimeSpan normal) =>
        double.TryParse(Environment.GetEnvironmentVariable("COVET_FI_HANG_GUARD"), System.Globalization.CultureInfo.InvariantCulture, out var seconds)
        && TimeSpan.FromSeconds(seconds) > normal
            ? TimeSpan.FromSeconds(seconds)
            : normal;

    public static TimeSpan Percentile(IReadOnlyCollection<TimeSpan> values, double percentile)
    {
        if (values.Count == 0)
            return TimeSpan.Zero;
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(sorted.Length * percentile / 100.0);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    public static string Ms(TimeSpan value) => $"{value.TotalMilliseconds:F1} ms";

    public static string Summary(IReadOnlyCollection<TimeSpan> values) =>
        values.Count == 0
            ? "n=0"
            : $"n={values.Count} p50={Ms(Percentile(values, 50))} p95={Ms(Percentile(values, 95))} max={Ms(values.Max())}";

    public static string Describe(CovetPoolStatistics s) =>
        $"total={s.Total} idle={s.Idle} inUse={s.InUse} waiting={s.Waiting} created={s.ConnectionsCreated} destroyed={s.ConnectionsDestroyed} " +
        $"failures={s.ConnectionFailures} prePingFailures={s.PrePingFailures} healthCheckFailures={s.HealthCheckFailures} resetFailures={s.ResetFailures} " +
        $"acquireTimeouts={s.AcquireTimeouts} circuit={s.CircuitState} rejections={s.CircuitRejections} " +
        $"acquireP50={Ms(s.AcquireP50)} acquireMax={Ms(s.AcquireMax)} useP50={Ms(s.UseP50)}";

    /// <summary>Polls until <paramref name="condition"/> holds or <paramref name="timeout"/> passes; returns whether it held.</summary>
    public static async Task<bool> UntilAsync(Func<bool> condition, TimeSpan timeout, int stepMs = 5)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
                return condition();
            await Task.Delay(stepMs);
        }
        return true;
    }
}
