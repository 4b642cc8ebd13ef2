using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Order;
using Covet.Data.EntityFrameworkCore.Benchmarks.Infrastructure;

namespace Covet.Data.EntityFrameworkCore.Benchmarks;

/// <summary>
/// <c>SaveChanges</c>, the typical per-request shape: new context (a DI scope) → add <see cref="Rows"/> new entries →
/// <c>SaveChangesAsync()</c> → dispose. Every call's row count is checked, and the cleanup checks that the table holds
/// exactly the rows the case inserted (the table grows only for the life of the case; its database is then dropped).
/// </summary>
/// <remarks>
/// One row is a single <c>INSERT ... RETURNING</c>; ten rows are one batched command in a transaction.
/// Baseline of each <see cref="EfBenchmarkBase.Contexts"/> × <see cref="Rows"/> group: <c>UseNpgsql(cs)</c> with
/// Npgsql's own pool; compared with <c>UseNpgsql(cs).UseCovetPool(...)</c>, the same maximum pool size.
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
[Orderer(SummaryOrderPolicy.Declared)]
public class EfSaveChangesBenchmarks : EfBenchmarkBase
{
    public const string Category = "SaveChanges";

    /// <summary>Entities added before each <c>SaveChangesAsync</c>.</summary>
    [Params(1, 10)]
    public int Rows { get; set; }

    [GlobalSetup(Target = nameof(SaveChanges_Npgsql))]
    public void SetupNpgsql() => Setup(covet: false);

    [GlobalSetup(Target = nameof(SaveChanges_Covet))]
    public void SetupCovet() => Setup(covet: true);

    protected override Task RunOnceAsync() => SaveAsync(Rows);

    [Benchmark(Baseline = true), BenchmarkCategory(Databases.PostgreSql, Category)]
    public Task<int> SaveChanges_Npgsql() => SaveAsync(Rows);

    [Benchmark, BenchmarkCategory(Databases.PostgreSql, Category)]
    public Task<int> SaveChanges_Covet() => SaveAsync(Rows);
}
