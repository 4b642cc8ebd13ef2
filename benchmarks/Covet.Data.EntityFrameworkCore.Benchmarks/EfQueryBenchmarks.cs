using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Order;
using Covet.Data.EntityFrameworkCore.Benchmarks.Infrastructure;

namespace Covet.Data.EntityFrameworkCore.Benchmarks;

/// <summary>
/// A simple EF query, the typical per-request shape: new context (a DI scope) →
/// <c>ctx.Blogs.AsNoTracking().Where(b => b.Id == id).FirstOrDefaultAsync()</c> → dispose. The id walks through the
/// seeded blogs; every result is checked.
/// </summary>
/// <remarks>
/// Baseline of each <see cref="EfBenchmarkBase.Contexts"/> group: <c>UseNpgsql(cs)</c> with Npgsql's own pool;
/// compared with <c>UseNpgsql(cs).UseCovetPool(...)</c>, the same maximum pool size (issue 6's target: within 5 %).
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
[Orderer(SummaryOrderPolicy.Declared)]
public class EfQueryBenchmarks : EfBenchmarkBase
{
    public const string Category = "Query";

    [GlobalSetup(Target = nameof(Query_Npgsql))]
    public void SetupNpgsql() => Setup(covet: false);

    [GlobalSetup(Target = nameof(Query_Covet))]
    public void SetupCovet() => Setup(covet: true);

    protected override Task RunOnceAsync() => QueryAsync();

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.PostgreSql, Category)]
    public Task<Blog> Query_Npgsql() => QueryAsync();

    [Benchmark, BenchmarkCategory(Databases.PostgreSql, Category)]
    public Task<Blog> Query_Covet() => QueryAsync();
}
