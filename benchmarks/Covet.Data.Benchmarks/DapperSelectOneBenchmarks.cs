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
/// Open → Dapper <c>ExecuteScalarAsync&lt;int&gt;("select 1")</c> → close, one caller: the round trip as an app sees it.
/// </summary>
/// <remarks>
/// <para>After a command Covet resets the session on return (PostgreSQL <c>DISCARD ALL</c>, MySQL <c>COM_RESET_CONNECTION</c>:
/// an extra round trip, run in the background when no one waits; SQLite: an inline local cleanup query). Npgsql instead
/// pipelines its reset with the next command, and MySqlConnector with <c>ConnectionReset=true</c> resets too. The
/// <c>NoReset</c> rows (Covet <c>ResetSessionOnReturn=false</c>, MySqlConnector <c>ConnectionReset=false</c>) show what the
/// reset costs on each side. Covet's statistics (connections created, printed at cleanup) show whether the background
/// reset made the single caller open extra physical connections.</para>
/// Baseline of each database group: the provider's own pool with its defaults.
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
[Orderer(SummaryOrderPolicy.Declared)]
public class DapperSelectOneBenchmarks : PoolBenchmarkBase
{
    private DbDataSource _pgNpgsql = null!, _pgCovet = null!, _pgCovetNoReset = null!, _pgCovetNoLeak = null!, _pgCovetTracesAlways = null!;
    private DbDataSource _myConnector = null!, _myConnectorNoReset = null!, _myCovet = null!, _myCovetNoReset = null!;
    private DbDataSource _sqlite = null!, _sqliteCovet = null!, _sqliteCovetNoReset = null!;

    // =============================================================================================== PostgreSQL

    [GlobalSetup(Targets = new[] { nameof(Pg_Npgsql), nameof(Pg_Covet), nameof(Pg_Covet_NoReset), nameof(Pg_Covet_NoLeakDetection), nameof(Pg_Covet_LeakTracesAlways) })]
    public void SetupPostgreSql()
    {
        var cs = Databases.PostgreSqlConnectionString;
        _pgNpgsql = NpgsqlPool(cs);
        _pgCovet = Covet(NpgsqlFactory.Instance, cs, CovetVariant.Default, "pg");
        _pgCovetNoReset = Covet(NpgsqlFactory.Instance, cs, CovetVariant.NoReset, "pg");
        _pgCovetNoLeak = Covet(NpgsqlFactory.Instance, cs, CovetVariant.NoLeakDetection, "pg");
        _pgCovetTracesAlways = Covet(NpgsqlFactory.Instance, cs, CovetVariant.LeakTracesAlways, "pg");
        Warm(_pgNpgsql, _pgCovet, _pgCovetNoReset, _pgCovetNoLeak, _pgCovetTracesAlways);
    }

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.PostgreSql)]
    public Task<int> Pg_Npgsql() => Workload.SelectOneAsync(_pgNpgsql);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql)]
    public Task<int> Pg_Covet() => Workload.SelectOneAsync(_pgCovet);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql)]
    public Task<int> Pg_Covet_NoReset() => Workload.SelectOneAsync(_pgCovetNoReset);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql)]
    public Task<int> Pg_Covet_NoLeakDetection() => Workload.SelectOneAsync(_pgCovetNoLeak);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql)]
    public Task<int> Pg_Covet_LeakTracesAlways() => Workload.SelectOneAsync(_pgCovetTracesAlways);

    // =============================================================================================== MariaDB

    [GlobalSetup(Targets = new[] { nameof(MariaDb_MySqlConnector), nameof(MariaDb_MySqlConnector_NoReset), nameof(MariaDb_Covet), nameof(MariaDb_Covet_NoReset) })]
    public void SetupMariaDb()
    {
        var cs = Databases.MySqlConnectionString;
        _myConnector = MySqlConnectorPool(cs, connectionReset: true);
        _myConnectorNoReset = MySqlConnectorPool(cs, connectionReset: false);
        _myCovet = Covet(MySqlConnectorFactory.Instance, cs, CovetVariant.Default, "mariadb");
        _myCovetNoReset = Covet(MySqlConnectorFactory.Instance, cs, CovetVariant.NoReset, "mariadb");
        Warm(_myConnector, _myConnectorNoReset, _myCovet, _myCovetNoReset);
    }

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.MariaDb)]
    public Task<int> MariaDb_MySqlConnector() => Workload.SelectOneAsync(_myConnector);

    [Benchmark, BenchmarkCategory(Databases.MariaDb)]
    public Task<int> MariaDb_MySqlConnector_NoReset() => Workload.SelectOneAsync(_myConnectorNoReset);

    [Benchmark, BenchmarkCategory(Databases.MariaDb)]
    public Task<int> MariaDb_Covet() => Workload.SelectOneAsync(_myCovet);

    [Benchmark, BenchmarkCategory(Databases.MariaDb)]
    public Task<int> MariaDb_Covet_NoReset() => Workload.SelectOneAsync(_myCovetNoReset);

    // =============================================================================================== SQLite

    [GlobalSetup(Targets = new[] { nameof(Sqlite_MicrosoftData), nameof(Sqlite_Covet), nameof(Sqlite_Covet_NoReset) })]
    public void SetupSqlite()
    {
        var cs = NewSqliteDatabase();
        _sqlite = SqlitePool(cs);
        _sqliteCovet = Covet(SqliteFactory.Instance, cs, CovetVariant.Default, "sqlite");
        _sqliteCovetNoReset = Covet(SqliteFactory.Instance, cs, CovetVariant.NoReset, "sqlite");
        Warm(_sqlite, _sqliteCovet, _sqliteCovetNoReset);
    }

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.Sqlite)]
    public Task<int> Sqlite_MicrosoftData() => Workload.SelectOneAsync(_sqlite);

    [Benchmark, BenchmarkCategory(Databases.Sqlite)]
    public Task<int> Sqlite_Covet() => Workload.SelectOneAsync(_sqliteCovet);

    [Benchmark, BenchmarkCategory(Databases.Sqlite)]
    public Task<int> Sqlite_Covet_NoReset() => Workload.SelectOneAsync(_sqliteCovetNoReset);
}
