using System.Data.Common;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Order;
using Covet.Data.Benchmarks.Infrastructure;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.Benchmarks;

/// <summary>
/// One open → close cycle of an idle pooled connection, no command: the pool's own overhead. Covet vs each provider's pool.
/// </summary>
/// <remarks>
/// <para>In this tight loop Covet's connection is always "hot" (used within <see cref="CovetPoolOptions.AliveBypassWindow"/>,
/// 500 ms), so <c>Covet</c> vs <c>Covet_NoPrePing</c> shows only the cost of the check, not of a ping;
/// <c>Covet_PingEveryCheckout</c> (alive window 0) shows the cost of a real pre-ping round trip on every checkout.</para>
/// <para><c>Covet</c> vs <c>Covet_NoLeakDetection</c> is the cost of the stack trace captured at every checkout.</para>
/// <para>No command runs, so Covet never resets the session here (nothing to reset); MySqlConnector with its default
/// <c>ConnectionReset=true</c> may still do its own reset, hence the <c>NoReset</c> row.</para>
/// Baseline of each category group (database × sync/async): the provider's own pool.
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
[Orderer(SummaryOrderPolicy.Declared)]
public class OpenCloseBenchmarks : PoolBenchmarkBase
{
    private DbDataSource _pgNpgsql = null!, _pgCovet = null!, _pgCovetNoPrePing = null!, _pgCovetNoLeak = null!, _pgCovetPingAlways = null!;
    private DbDataSource _myConnector = null!, _myConnectorNoReset = null!, _myCovet = null!, _myCovetNoPrePing = null!, _myCovetNoLeak = null!, _myCovetPingAlways = null!;
    private DbDataSource _sqlite = null!, _sqliteCovet = null!, _sqliteCovetNoPrePing = null!, _sqliteCovetNoLeak = null!;

    // =============================================================================================== PostgreSQL

    [GlobalSetup(Targets = new[]
    {
        nameof(Pg_Npgsql_Async), nameof(Pg_Covet_Async), nameof(Pg_Covet_NoPrePing_Async), nameof(Pg_Covet_NoLeakDetection_Async),
        nameof(Pg_Covet_PingEveryCheckout_Async), nameof(Pg_Npgsql_Sync), nameof(Pg_Covet_Sync),
    })]
    public void SetupPostgreSql()
    {
        var cs = Databases.PostgreSqlConnectionString;
        _pgNpgsql = NpgsqlPool(cs);
        _pgCovet = Covet(NpgsqlFactory.Instance, cs, CovetVariant.Default, "pg");
        _pgCovetNoPrePing = Covet(NpgsqlFactory.Instance, cs, CovetVariant.NoPrePing, "pg");
        _pgCovetNoLeak = Covet(NpgsqlFactory.Instance, cs, CovetVariant.NoLeakDetection, "pg");
        _pgCovetPingAlways = Covet(NpgsqlFactory.Instance, cs, CovetVariant.PingEveryCheckout, "pg");
        Warm(_pgNpgsql, _pgCovet, _pgCovetNoPrePing, _pgCovetNoLeak, _pgCovetPingAlways);
    }

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.PostgreSql, Databases.Async)]
    public Task Pg_Npgsql_Async() => Workload.OpenCloseAsync(_pgNpgsql);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql, Databases.Async)]
    public Task Pg_Covet_Async() => Workload.OpenCloseAsync(_pgCovet);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql, Databases.Async)]
    public Task Pg_Covet_NoPrePing_Async() => Workload.OpenCloseAsync(_pgCovetNoPrePing);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql, Databases.Async)]
    public Task Pg_Covet_NoLeakDetection_Async() => Workload.OpenCloseAsync(_pgCovetNoLeak);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql, Databases.Async)]
    public Task Pg_Covet_PingEveryCheckout_Async() => Workload.OpenCloseAsync(_pgCovetPingAlways);

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.PostgreSql, Databases.Sync)]
    public void Pg_Npgsql_Sync() => Workload.OpenClose(_pgNpgsql);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql, Databases.Sync)]
    public void Pg_Covet_Sync() => Workload.OpenClose(_pgCovet);

    // =============================================================================================== MariaDB

    [GlobalSetup(Targets = new[]
    {
        nameof(MariaDb_MySqlConnector_Async), nameof(MariaDb_MySqlConnector_NoReset_Async), nameof(MariaDb_Covet_Async),
        nameof(MariaDb_Covet_NoPrePing_Async), nameof(MariaDb_Covet_NoLeakDetection_Async), nameof(MariaDb_Covet_PingEveryCheckout_Async),
        nameof(MariaDb_MySqlConnector_Sync), nameof(MariaDb_MySqlConnector_NoReset_Sync), nameof(MariaDb_Covet_Sync),
    })]
    public void SetupMariaDb()
    {
        var cs = Databases.MySqlConnectionString;
        _myConnector = MySqlConnectorPool(cs, connectionReset: true);
        _myConnectorNoReset = MySqlConnectorPool(cs, connectionReset: false);
        _myCovet = Covet(MySqlConnectorFactory.Instance, cs, CovetVariant.Default, "mariadb");
        _myCovetNoPrePing = Covet(MySqlConnectorFactory.Instance, cs, CovetVariant.NoPrePing, "mariadb");
        _myCovetNoLeak = Covet(MySqlConnectorFactory.Instance, cs, CovetVariant.NoLeakDetection, "mariadb");
        _myCovetPingAlways = Covet(MySqlConnectorFactory.Instance, cs, CovetVariant.PingEveryCheckout, "mariadb");
        Warm(_myConnector, _myConnectorNoReset, _myCovet, _myCovetNoPrePing, _myCovetNoLeak, _myCovetPingAlways);
    }

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.MariaDb, Databases.Async)]
    public Task MariaDb_MySqlConnector_Async() => Workload.OpenCloseAsync(_myConnector);

    [Benchmark, BenchmarkCategory(Databases.MariaDb, Databases.Async)]
    public Task MariaDb_MySqlConnector_NoReset_Async() => Workload.OpenCloseAsync(_myConnectorNoReset);

    [Benchmark, BenchmarkCategory(Databases.MariaDb, Databases.Async)]
    public Task MariaDb_Covet_Async() => Workload.OpenCloseAsync(_myCovet);

    [Benchmark, BenchmarkCategory(Databases.MariaDb, Databases.Async)]
    public Task MariaDb_Covet_NoPrePing_Async() => Workload.OpenCloseAsync(_myCovetNoPrePing);

    [Benchmark, BenchmarkCategory(Databases.MariaDb, Databases.Async)]
    public Task MariaDb_Covet_NoLeakDetection_Async() => Workload.OpenCloseAsync(_myCovetNoLeak);

    [Benchmark, BenchmarkCategory(Databases.MariaDb, Databases.Async)]
    public Task MariaDb_Covet_PingEveryCheckout_Async() => Workload.OpenCloseAsync(_myCovetPingAlways);

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.MariaDb, Databases.Sync)]
    public void MariaDb_MySqlConnector_Sync() => Workload.OpenClose(_myConnector);

    [Benchmark, BenchmarkCategory(Databases.MariaDb, Databases.Sync)]
    public void MariaDb_MySqlConnector_NoReset_Sync() => Workload.OpenClose(_myConnectorNoReset);

    [Benchmark, BenchmarkCategory(Databases.MariaDb, Databases.Sync)]
    public void MariaDb_Covet_Sync() => Workload.OpenClose(_myCovet);

    // =============================================================================================== SQLite

    [GlobalSetup(Targets = new[]
    {
        nameof(Sqlite_MicrosoftData_Async), nameof(Sqlite_Covet_Async), nameof(Sqlite_Covet_NoPrePing_Async),
        nameof(Sqlite_Covet_NoLeakDetection_Async), nameof(Sqlite_MicrosoftData_Sync), nameof(Sqlite_Covet_Sync),
    })]
    public void SetupSqlite()
    {
        var cs = NewSqliteDatabase();
        _sqlite = SqlitePool(cs);
        _sqliteCovet = Covet(SqliteFactory.Instance, cs, CovetVariant.Default, "sqlite");
        _sqliteCovetNoPrePing = Covet(SqliteFactory.Instance, cs, CovetVariant.NoPrePing, "sqlite");
        _sqliteCovetNoLeak = Covet(SqliteFactory.Instance, cs, CovetVariant.NoLeakDetection, "sqlite");
        Warm(_sqlite, _sqliteCovet, _sqliteCovetNoPrePing, _sqliteCovetNoLeak);
    }

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.Sqlite, Databases.Async)]
    public Task Sqlite_MicrosoftData_Async() => Workload.OpenCloseAsync(_sqlite);

    [Benchmark, BenchmarkCategory(Databases.Sqlite, Databases.Async)]
    public Task Sqlite_Covet_Async() => Workload.OpenCloseAsync(_sqliteCovet);

    [Benchmark, BenchmarkCategory(Databases.Sqlite, Databases.Async)]
    public Task Sqlite_Covet_NoPrePing_Async() => Workload.OpenCloseAsync(_sqliteCovetNoPrePing);

    [Benchmark, BenchmarkCategory(Databases.Sqlite, Databases.Async)]
    public Task Sqlite_Covet_NoLeakDetection_Async() => Workload.OpenCloseAsync(_sqliteCovetNoLeak);

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.Sqlite, Databases.Sync)]
    public void Sqlite_MicrosoftData_Sync() => Workload.OpenClose(_sqlite);

    [Benchmark, BenchmarkCategory(Databases.Sqlite, Databases.Sync)]
    public void Sqlite_Covet_Sync() => Workload.OpenClose(_sqliteCovet);
}
