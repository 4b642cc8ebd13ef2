using System.Data.Common;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Order;
using Covet.Data.Benchmarks.Infrastructure;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.Benchmarks;

/// <summary>
/// <see cref="Workers"/> concurrent async loops of open → Dapper <c>select 1</c> → close sharing <see cref="Operations"/>
/// operations, on a pool of at most <see cref="MaxPoolSize"/> connections (16 workers: no queueing; 200: ten waiters per
/// connection). The reported time is per operation (OperationsPerInvoke), so the Ratio column is the inverse throughput ratio.
/// </summary>
/// <remarks>Baseline of each database × worker-count group: the provider's own pool with the same maximum.</remarks>
[MemoryDiagnoser]
[ThreadingDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
[Orderer(SummaryOrderPolicy.Declared)]
public class ConcurrentThroughputBenchmarks : PoolBenchmarkBase
{
    public const int Operations = 20_000;
    public const int MaxPoolSize = 20;

    [Params(16, 200)]
    public int Workers { get; set; }

    private DbDataSource _pgNpgsql = null!, _pgCovet = null!;
    private DbDataSource _myConnector = null!, _myCovet = null!;

    // =============================================================================================== PostgreSQL

    [GlobalSetup(Target = nameof(Pg_Npgsql))]
    public void SetupPgNpgsql() => _pgNpgsql = Fill(NpgsqlPool(Databases.PostgreSqlConnectionString, maxPoolSize: MaxPoolSize));

    [GlobalSetup(Target = nameof(Pg_Covet))]
    public void SetupPgCovet() => _pgCovet = Fill(Covet(NpgsqlFactory.Instance, Databases.PostgreSqlConnectionString, CovetVariant.Default, "pg", maxPoolSize: MaxPoolSize));

    [Benchmark(Baseline = true, OperationsPerInvoke = Operations), BenchmarkCategory(Databases.PostgreSql)]
    public Task Pg_Npgsql() => Workload.RunWorkersAsync(_pgNpgsql, Workers, Operations);

    [Benchmark(OperationsPerInvoke = Operations), BenchmarkCategory(Databases.PostgreSql)]
    public Task Pg_Covet() => Workload.RunWorkersAsync(_pgCovet, Workers, Operations);

    // =============================================================================================== MariaDB

    [GlobalSetup(Target = nameof(MariaDb_MySqlConnector))]
    public void SetupMariaDbConnector() => _myConnector = Fill(MySqlConnectorPool(Databases.MySqlConnectionString, maxPoolSize: MaxPoolSize));

    [GlobalSetup(Target = nameof(MariaDb_Covet))]
    public void SetupMariaDbCovet() => _myCovet = Fill(Covet(MySqlConnectorFactory.Instance, Databases.MySqlConnectionString, CovetVariant.Default, "mariadb", maxPoolSize: MaxPoolSize));

    [Benchmark(Baseline = true, OperationsPerInvoke = Operations), BenchmarkCategory(Databases.MariaDb)]
    public Task MariaDb_MySqlConnector() => Workload.RunWorkersAsync(_myConnector, Workers, Operations);

    [Benchmark(OperationsPerInvoke = Operations), BenchmarkCategory(Databases.MariaDb)]
    public Task MariaDb_Covet() => Workload.RunWorkersAsync(_myCovet, Workers, Operations);

    /// <summary>Opens the pool's connections up front (a short run at the same concurrency), so no iteration pays the connects.</summary>
    private DbDataSource Fill(DbDataSource source)
    {
        Workload.RunWorkersAsync(source, Workers, Math.Max(1_000, Workers * 5)).GetAwaiter().GetResult();
        Thread.Sleep(50);
        return source;
    }
}
