using System.Data.Common;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Order;
using Covet.Data.Benchmarks.Infrastructure;
using Npgsql;

namespace Covet.Data.Benchmarks;

/// <summary>
/// A burst of <see cref="Callers"/> concurrent async callers (each started on the thread pool) on a pool of
/// <see cref="MaxPoolSize"/>, each doing open → Dapper <c>select 1</c> → close once. One operation = the whole burst
/// (so the time is the burst's wall-clock time): the waiter queue under a thundering herd.
/// </summary>
[MemoryDiagnoser]
[ThreadingDiagnoser]
[Orderer(SummaryOrderPolicy.Declared)]
public class ManyWaitersBenchmarks : PoolBenchmarkBase
{
    public const int Callers = 10_000;
    public const int MaxPoolSize = 100;

    private DbDataSource _pgNpgsql = null!, _pgCovet = null!;

    // Generous acquire timeouts on both sides: 10,000 callers on 2 busy cores must not time out.
    [GlobalSetup(Target = nameof(Pg_Npgsql_Burst10k))]
    public void SetupNpgsql() => _pgNpgsql = Fill(NpgsqlPool(Databases.PostgreSqlConnectionString, maxPoolSize: MaxPoolSize, timeoutSeconds: 120));

    [GlobalSetup(Target = nameof(Pg_Covet_Burst10k))]
    public void SetupCovet() => _pgCovet = Fill(Covet(NpgsqlFactory.Instance, Databases.PostgreSqlConnectionString, CovetVariant.Default, "pg",
        maxPoolSize: MaxPoolSize, acquireTimeout: TimeSpan.FromSeconds(120)));

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.PostgreSql)]
    public Task Pg_Npgsql_Burst10k() => Workload.BurstAsync(_pgNpgsql, Callers);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql)]
    public Task Pg_Covet_Burst10k() => Workload.BurstAsync(_pgCovet, Callers);

    private static DbDataSource Fill(DbDataSource source)
    {
        Workload.BurstAsync(source, MaxPoolSize * 3).GetAwaiter().GetResult();
        Thread.Sleep(50);
        return source;
    }
}
